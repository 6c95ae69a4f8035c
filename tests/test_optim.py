"""The hand-written optimizers take torch.optim's steps (``training/optim.py``)."""

from __future__ import annotations

import pytest
import torch

from handgrad.training.optim import Adam, HeavyBall, make_optimizer


def _trajectory(optimizer, params, steps: int, by_hand: bool) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        grads = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
        if by_hand:
            optimizer.step_with(grads)
        else:
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            optimizer.step()
    return [p.detach().clone() for p in params]


def _params():
    return [torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3), torch.ones(3).double()]


def _torch_sgd(ps):
    return torch.optim.SGD(ps, 0.05, momentum=0.9)


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (lambda ps: Adam(ps, 0.01), lambda ps: torch.optim.Adam(ps, 0.01)),
        (lambda ps: HeavyBall(ps, 0.05, 0.9), _torch_sgd),
        (lambda ps: make_optimizer("sgd", ps, 0.05, 0.9), _torch_sgd),
    ],
    ids=["adam", "heavy-ball", "sgd"],
)
def test_hand_written_steps_equal_torch_optims(mine, theirs):
    ours, reference = _params(), _params()
    got = _trajectory(mine(ours), ours, 50, by_hand=True)
    want = _trajectory(theirs(reference), reference, 50, by_hand=False)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_adam_resumes_from_its_state_dict():
    ours, resumed = _params(), _params()
    first = Adam(ours, 0.01)
    _trajectory(first, ours, 10, by_hand=True)
    second = Adam(resumed, 0.01)
    with torch.no_grad():
        for mine, saved in zip(resumed, ours, strict=True):
            mine.copy_(saved)
    second.load_state_dict(first.state_dict())
    a = _trajectory(first, ours, 5, by_hand=True)
    b = _trajectory(second, resumed, 5, by_hand=True)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_a_checkpoint_of_torch_optims_state_is_refused_with_a_message():
    from handgrad.errors import UserError

    params = _params()
    old = torch.optim.Adam(params, 0.01).state_dict()  # what sgd and adam once saved
    with pytest.raises(UserError, match="older handgrad.*Start a new run"):
        Adam(params, 0.01).load_state_dict(old)
