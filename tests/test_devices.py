"""Every layer on the device under test, against the same work on the CPU in float64.

``HANDGRAD_TEST_DEVICE=cuda`` (see conftest.py, and ``make gpu-check``) puts these on a
GPU; unset, they run on the CPU, where the cross-device assertions compare the CPU with
itself and the rest still guards the code paths. References are independent: torch's
own autograd on plain ops in float64, numpy.linalg.lstsq, and a CPU run of the same
configuration.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import handgrad
from handgrad.config import TrainConfig, check
from handgrad.data.datasets import load_dataset, synthetic
from handgrad.functions.linear_mse import LinearMSE, _TracedLinearMSE
from handgrad.training import Trainer, prepare

CPU = torch.device("cpu")


def problem(device, dtype, q=33, n=5, p=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = ((q, n), (n, p), (p,), (q, p))
    cpu = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    return cpu, [t.to(device=device, dtype=dtype).requires_grad_() for t in cpu]


def reference(X, W, b, Y):
    """Loss and the four gradients by autograd on plain torch ops, float64 on the CPU."""
    leaves = [t.detach().clone().requires_grad_() for t in (X, W, b, Y)]
    Xr, Wr, br, Yr = leaves
    loss = ((Xr @ Wr + br - Yr) ** 2).sum() / Xr.shape[0]
    return loss.detach(), torch.autograd.grad(loss, leaves)


def unfused(X, W, b, Y):
    return handgrad.mse(handgrad.linear(X, W, b), Y)


# float32 sums of a few dozen products: a relative error of a few float32 epsilons.
TOLERANCE = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("function", [handgrad.linear_mse, unfused], ids=["fused", "chained"])
def test_functions_on_the_device_match_autograd(device, dtype, function):
    cpu, inputs = problem(device, dtype)
    loss = function(*inputs)
    grads = torch.autograd.grad(loss, inputs)
    ref_loss, ref_grads = reference(*cpu)
    assert loss.device.type == device.type
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(loss.double().cpu(), ref_loss, **tol)
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.device.type == device.type and got.dtype == dtype
        torch.testing.assert_close(got.double().cpu(), want, **tol)


def test_the_device_under_test_refuses_a_cpu_array_beside_its_own(device):
    # What makes the device tests worth running off the CPU (on CUDA, or on the tests'
    # fakegpu where there is no GPU): a tensor left on the CPU fails as on a GPU.
    if device.type == "cpu":
        pytest.skip("one device: nothing to mix (HANDGRAD_TEST_DEVICE=fakegpu or cuda)")
    here = torch.ones(3, 2, dtype=torch.float64, device=device)
    with pytest.raises(RuntimeError, match="same device"):
        here @ torch.ones(2, 1, dtype=torch.float64)
    # A 0-dim CPU tensor is a number to CUDA, and so to fakegpu; views and in-place ops
    # stay where they are, with their values.
    twice = here * torch.tensor(2.0, dtype=torch.float64)
    twice[1:, 0].add_(1.0)
    assert twice.device.type == device.type and twice.t().device.type == device.type
    assert twice.cpu().tolist() == [[2.0, 2.0], [3.0, 2.0], [3.0, 2.0]]


def test_fused_pass_on_the_device_spans_several_blocks(device, monkeypatch):
    # Blocks of a few rows, so the per-block float64 sums are exercised on the device too.
    from handgrad.functions import blocked_pass

    monkeypatch.setattr(blocked_pass, "BLOCK_BYTES", 64)
    monkeypatch.setattr(blocked_pass, "DEVICE_BLOCK_BYTES", 64)
    cpu, inputs = problem(device, torch.float64, q=50)
    loss = handgrad.linear_mse(*inputs)
    grads = torch.autograd.grad(loss, inputs)
    ref_loss, ref_grads = reference(*cpu)
    torch.testing.assert_close(loss.cpu(), ref_loss, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=1e-12)


def test_the_twin_that_torch_compile_traces_equals_the_eager_function(device):
    # torch.compile applies _TracedLinearMSE; eagerly it must be the same Function to the
    # last gradient, double backward included (tests/test_linear_mse.py compiles it).
    _, inputs = problem(device, torch.float64, q=9, n=4, p=2)
    torch.autograd.gradcheck(_TracedLinearMSE.apply, inputs)
    torch.autograd.gradgradcheck(_TracedLinearMSE.apply, inputs)
    eager, traced = LinearMSE.apply(*inputs), _TracedLinearMSE.apply(*inputs)
    torch.testing.assert_close(traced, eager, rtol=1e-13, atol=0)
    for got, want in zip(
        torch.autograd.grad(traced, inputs), torch.autograd.grad(eager, inputs), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


def train(device, **settings):
    config = check(TrainConfig(device=device.type, dtype="float64", **settings))
    return Trainer(prepare(load_dataset("diabetes"), config), config).fit()


@pytest.mark.parametrize(
    "settings",
    [
        dict(),
        dict(path="fused", max_epochs=200),
        dict(path="chained", grad="autograd", max_epochs=200),
        dict(batch_size=32, max_epochs=5, optimizer="sgd", momentum=0.9, learning_rate=0.01),
        dict(optimizer="adam", learning_rate=0.05, max_epochs=50, scheduler="step"),
        dict(early_stopping=True, max_epochs=300),
        dict(batch_size=64, max_epochs=6, optimizer="sgd", learning_rate=0.05, scheduler="cosine"),
        dict(batch_size=64, max_epochs=6, optimizer="rmsprop", scheduler="exponential"),
        dict(optimizer="gd", learning_rate=0.2, max_epochs=60, scheduler="plateau"),
        dict(batch_size=32, max_epochs=5, optimizer="sgd", precondition="whiten"),
    ],
    ids=[
        "default",
        "fused",
        "autograd",
        "minibatch-momentum",
        "adam-step",
        "early-stopping",
        "cosine",
        "exponential",
        "plateau",
        "whitened",
    ],
)
def test_training_on_the_device_equals_training_on_the_cpu(device, settings):
    here, cpu = train(device, **settings), train(CPU, **settings)
    assert here.W.device.type == device.type
    got, want = here.metrics(), cpu.metrics()
    assert got["epochs"] == want["epochs"]
    assert got["gap_to_optimum"] == pytest.approx(want["gap_to_optimum"], abs=1e-6)
    torch.testing.assert_close(here.W.cpu(), cpu.W, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(here.b.cpu(), cpu.b, rtol=1e-8, atol=1e-10)


def test_divergence_on_the_device_stops_where_it_stops_on_the_cpu(device):
    from handgrad.training import DivergedError

    stopped = []
    for where in (device, CPU):
        with pytest.raises(DivergedError) as caught:
            train(where, optimizer="gd", learning_rate=50.0, max_epochs=100)
        stopped.append(str(caught.value))
    assert stopped[0] == stopped[1] and "diverged" in stopped[0]


def streamed_trainer(device, folder, monkeypatch):
    """A mini-batch run on diabetes read from .npy files in chunks of 64 rows, nothing
    kept in memory: every epoch reads and moves each chunk again."""
    import sys

    from handgrad.data.sources import NpySource

    monkeypatch.setattr(sys.modules["handgrad.training.prepare"], "CACHE_BYTES", 0)
    data = load_dataset("diabetes")
    np.save(folder / "X.npy", data.X)
    np.save(folder / "Y.npy", data.Y)
    source = NpySource(folder / "X.npy", folder / "Y.npy", chunk_rows=64)
    settings = dict(batch_size=16, max_epochs=4, optimizer="adam", learning_rate=0.01, tol=0.0)
    config = check(TrainConfig(device=device.type, dtype="float64", **settings))
    return Trainer(prepare(source, config), config)


def test_a_streamed_run_stopped_mid_epoch_goes_on_on_the_other_device(
    device, tmp_path, monkeypatch
):
    # Chunks cross to the device one by one; a checkpoint taken between two chunks of an
    # epoch on one device resumes on the other and ends where one CPU run ends.
    whole = streamed_trainer(CPU, tmp_path, monkeypatch).fit()
    first = streamed_trainer(device, tmp_path, monkeypatch)
    chunks = []
    first.chunk_hook = lambda trainer: chunks.append(trainer.position) or len(chunks) == 3
    first.fit()
    assert first.epoch == 0 and first.position is not None  # 3 chunks into epoch 1
    second = streamed_trainer(CPU, tmp_path, monkeypatch)
    second.load_state(first.state())
    second.fit()
    assert second.epoch == whole.epoch == 4
    np.testing.assert_allclose(second.history["train_mse"], whole.history["train_mse"], rtol=1e-9)
    torch.testing.assert_close(second.W.cpu(), whole.W, rtol=1e-8, atol=1e-10)


def test_estimator_on_the_device_equals_the_cpu_and_reaches_lstsq(device):
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    here = handgrad.GDRegressor(device=device.type).fit(X, y).predict(X)
    cpu = handgrad.GDRegressor(device="cpu").fit(X, y).predict(X)
    np.testing.assert_allclose(here, cpu, rtol=1e-8)
    A = np.hstack([X, np.ones((len(X), 1))])
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    optimum = np.mean((A @ theta - y) ** 2)
    # The estimator stops at a relative gap to the optimum of about 1e-6 (tol=1e-10).
    assert optimum <= np.mean((here - y) ** 2) <= optimum * (1 + 1e-5)


def test_checker_takes_inputs_on_the_device(device):
    _, inputs = problem(device, torch.float64, q=6, n=3, p=2)
    report = handgrad.check(handgrad.Linear, *inputs[:3])
    assert report.ok, str(report)


def test_a_model_trained_on_the_device_predicts_on_the_cpu(device, tmp_path):
    from handgrad.cli import main

    data = synthetic(samples=200, features=4, targets=2, seed=5)[0]
    csv = tmp_path / "data.csv"
    columns = [*data.feature_names, *data.target_names]
    np.savetxt(
        csv, np.hstack([data.X, data.Y]), delimiter=",", header=",".join(columns), comments=""
    )
    run = tmp_path / "run"
    targets = ",".join(data.target_names)
    argv = ["train", "--data", str(csv), "--target", targets, "--out", str(run), "--quiet"]
    argv += ["--test-fraction", "0"]
    assert main([*argv, "--device", device.type, "--dtype", "float64"]) == 0
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(run), "--data", str(csv), "--out", str(out)]) == 0
    predicted = np.loadtxt(out, delimiter=",", skiprows=1)
    A = np.hstack([data.X, np.ones((len(data.X), 1))])
    theta, *_ = np.linalg.lstsq(A, data.Y, rcond=None)
    np.testing.assert_allclose(predicted, A @ theta, rtol=1e-3, atol=1e-3)


def test_the_gpu_figures_script_runs_on_the_device_under_test(device):
    # make gpu-check runs benchmarks.gpu on CUDA; here it runs at toy sizes, so that the
    # script a GPU session relies on cannot rot where there is no GPU.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--device", device.type, "--quick"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "manual step (1024, 100, 10)" in done.stdout
    assert "GDRegressor.fit" in done.stdout
    chosen = "fused" if device.type == "cpu" else "small"  # paths.choose_path, rule 2
    assert f"auto path 1024x100x10: {chosen}" in done.stdout
    assert done.stdout.count(f"{device.type} vs cpu, ") == 4


# --- runs and models that move between devices ----------------------------------------
# A subprocess that sees no GPU, as on a CPU-only machine: no CUDA, and no fakegpu.
NO_GPU = {"CUDA_VISIBLE_DEVICES": "", "HANDGRAD_FAKEGPU": "0"}


def run_python(code: str, *args: str, env: dict | None = None) -> str:
    """``python -c code args`` in a fresh process (with ``env`` added); its stdout."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


RESUME = """
import sys
from handgrad.cli import main
sys.exit(main(["train", "--resume", sys.argv[1], "--epochs", "12", "--device", "cpu", "--quiet"]))
"""


@pytest.mark.parametrize("direction", ["device-then-cpu", "cpu-then-device"])
def test_a_run_goes_on_on_another_device_as_if_it_had_not_moved(device, direction, tmp_path):
    # A checkpoint holds its state on the CPU: a run started on one device resumes on
    # the other, momentum and all, and ends where one run on the CPU ends. The CPU leg
    # of "device-then-cpu" runs where no GPU is visible, as on a machine without one.
    import json

    from handgrad.cli import main
    from handgrad.model import LinearModel

    flags = ["--dataset", "diabetes", "--batch-size", "32", "--optimizer", "sgd"]
    flags += ["--momentum", "0.9", "--lr", "0.01", "--tol", "0", "--dtype", "float64", "--quiet"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", *flags, "--epochs", "12", "--device", "cpu", "--out", str(whole)]) == 0
    first = device.type if direction == "device-then-cpu" else "cpu"
    assert main(["train", *flags, "--epochs", "5", "--device", first, "--out", str(part)]) == 0
    if direction == "device-then-cpu":
        run_python(RESUME, str(part), env=NO_GPU)
    else:
        resume = ["train", "--resume", str(part), "--epochs", "12", "--device", device.type]
        assert main([*resume, "--quiet"]) == 0
    metrics = json.loads((part / "metrics.json").read_text())
    assert metrics["epochs"] == 12
    assert metrics["device"].split(":")[0] == ("cpu" if first != "cpu" else device.type)
    a, b = LinearModel.load(whole / "model"), LinearModel.load(part / "model")
    torch.testing.assert_close(b.W, a.W, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(b.b, a.b, rtol=1e-8, atol=1e-10)


UNPICKLE = """
import pickle, sys
import numpy as np
from sklearn.datasets import load_diabetes
X, y = load_diabetes(return_X_y=True)
model = pickle.loads(open(sys.argv[1], "rb").read())
np.save(sys.argv[2], model.predict(X))
model.set_params(device="cpu").partial_fit(X, y)
np.save(sys.argv[3], model.coef_)
print(model.device_)
"""


def test_an_estimator_fitted_on_the_device_unpickles_and_goes_on_without_one(device, tmp_path):
    import pickle

    from sklearn.datasets import load_diabetes

    from handgrad.devices import device_name

    X, y = load_diabetes(return_X_y=True)
    model = handgrad.GDRegressor(device=device.type, batch_size=32, optimizer="adam")
    model.set_params(learning_rate=0.05, max_epochs=3)
    with pytest.warns(UserWarning):  # 3 epochs do not converge: ConvergenceWarning
        model.fit(X, y)
    assert model.device_ == device_name(model._trainer.data.device)
    assert model.device_.split(":")[0] == device.type
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(model))
    predicted, coef = tmp_path / "predicted.npy", tmp_path / "coef.npy"
    shown = run_python(UNPICKLE, str(pickled), str(predicted), str(coef), env=NO_GPU)
    assert shown.strip() == "cpu"
    np.testing.assert_array_equal(np.load(predicted), model.predict(X))
    model.partial_fit(X, y)  # on its own device: the same epoch, up to rounding
    np.testing.assert_allclose(np.load(coef), model.coef_, rtol=1e-8)


# --- naming a device this machine lacks ----------------------------------------------
def no_cuda(monkeypatch, count=0):
    """Make torch report ``count`` CUDA devices, and no other accelerator, without the
    hardware (and without the tests' fakegpu, where it runs)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: count > 0)
    cuda = torch.device("cuda") if count else None
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *_, **__: cuda)


@pytest.mark.parametrize(
    ("name", "count", "message"),
    [
        ("cuda", 0, "--device cuda: no CUDA device is available here; use --device cpu."),
        ("cuda:7", 0, "--device cuda:7: no CUDA device is available here; use --device cpu."),
        ("cuda:7", 1, "--device cuda:7: this machine has 1 CUDA device (cuda:0); use one of"),
        ("cuda:2", 2, "this machine has 2 CUDA devices (cuda:0 to cuda:1); use one of those"),
        ("gpu7", 0, "--device gpu7 is not a device; use auto, cpu, cuda or cuda:1."),
        ("CUDA", 0, "--device CUDA is not a device (did you mean --device cuda?); use auto, cpu"),
        ("", 0, "--device '' is not a device; use auto, cpu, cuda or cuda:1."),
        ("mps", 0, "--device mps: training keeps its statistics, metrics and iterate means"),
    ],
)
def test_a_device_this_machine_lacks_is_one_sentence(monkeypatch, name, count, message):
    from handgrad.devices import resolve_device
    from handgrad.errors import UserError

    no_cuda(monkeypatch, count)
    with pytest.raises(UserError) as caught:
        resolve_device(name)
    assert message in str(caught.value)
    if count:
        assert resolve_device(f"cuda:{count - 1}") == torch.device(f"cuda:{count - 1}")


def test_the_estimator_takes_a_torch_device_and_names_a_misspelt_one():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    model = handgrad.GDRegressor(device=torch.device("cpu"), max_epochs=5)
    with pytest.warns(UserWarning):  # 5 epochs: not converged
        model.fit(X, y)
    assert model.device_ == "cpu"
    wanted = r"^GDRegressor: device='CUDA' is not a device \(did you mean device='cuda'\?\)"
    with pytest.raises(ValueError, match=wanted):
        handgrad.GDRegressor(device="CUDA").fit(X, y)


def test_runs_name_a_device_with_its_index_and_a_gpu_with_its_model():
    from handgrad.devices import device_name

    assert device_name(torch.device("cpu")) == "cpu"
    assert device_name(torch.device("xpu", 1)) == "xpu:1"  # no XPU needed to name one


def test_auto_trains_on_the_cpu_on_a_mac_and_the_checker_may_use_mps(monkeypatch):
    from handgrad.devices import resolve_device

    no_cuda(monkeypatch)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    mps = torch.device("mps")
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *_, **__: mps)
    assert resolve_device("auto") == CPU  # training: float64 everywhere
    assert resolve_device("auto", float64=False) == mps


def test_auto_takes_an_accelerator_other_than_cuda(monkeypatch):
    # Intel's XPU, or an out-of-tree backend (the tests' fakegpu): what torch.accelerator
    # reports, when there is no CUDA.
    from handgrad.devices import resolve_device

    no_cuda(monkeypatch)
    xpu = torch.device("xpu", 0)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *_, **__: xpu)
    assert resolve_device("auto") == torch.device("xpu")


def test_the_estimator_names_its_own_parameter_for_a_missing_device(monkeypatch):
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    model = handgrad.GDRegressor(max_epochs=2, batch_size=64).partial_fit(X, y)
    no_cuda(monkeypatch)
    wanted = "GDRegressor: device='cuda': no CUDA device is available here; use device='cpu'"
    with pytest.raises(ValueError, match=rf"^{wanted}\.$"):
        handgrad.GDRegressor(device="cuda").fit(X, y)
    with pytest.raises(ValueError, match=rf"^{wanted} \(set_params\(device='cpu'\) goes on"):
        model.set_params(device="cuda").partial_fit(X, y)  # as after unpickling a GPU fit


# --- no host synchronisation per mini-batch --------------------------------------------
class HostReads:
    """Counts, while active, the reads of a tensor on ``device`` back to the host:
    ``.item()``, ``bool()``, ``float()``, data-dependent shapes, copies to the CPU. On
    a GPU each one waits for everything queued before it. Tensors in ``kept`` are left
    out: torch.optim's step counts, which live on the CPU whatever the device."""

    def __init__(self, device: torch.device, kept=()) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        aten = torch.ops.aten
        reads = {aten._local_scalar_dense.default, aten.is_nonzero.default}
        reads |= {aten.equal.default, aten.nonzero.default}
        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                on_device = [a for a in args if isinstance(a, torch.Tensor)]
                on_device = any(a.device.type == device.type for a in on_device)
                to_host = func is aten._to_copy.default and device.type != "cpu"
                to_host = to_host and torch.device(kwargs.get("device") or device).type == "cpu"
                kept_here = any(a is k for a in args for k in kept)
                if on_device and (func in reads or to_host) and not kept_here:
                    counter.count += 1
                return func(*args, **kwargs)

        self.count, self._mode = 0, Mode()

    def __enter__(self):
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)


@pytest.mark.parametrize(
    "settings",
    [
        dict(optimizer="sgd", momentum=0.9, learning_rate=0.01),
        dict(optimizer="adam", learning_rate=0.01, path="chained", grad="autograd"),
        dict(optimizer="gd", momentum=0.8, path="fused", grad="autograd"),
        dict(optimizer="rmsprop", learning_rate=0.001),
        dict(optimizer="adagrad", learning_rate=0.01),
        dict(optimizer="adamw", learning_rate=0.01),
        dict(optimizer="sgd", learning_rate=0.01, path="chained"),
        dict(precondition="whiten"),  # whitened steps; auto: halving and iterate averaging
        dict(optimizer="sgd", momentum=0.9, learning_rate=0.01, path="small-in-torch"),
    ],
    ids=[
        "small-momentum",
        "chained-autograd-adam",
        "fused-heavy-ball",
        "rmsprop",
        "adagrad",
        "adamw",
        "chained",
        "whitened",
        "small-in-torch",
    ],
)
def test_a_minibatch_epoch_reads_nothing_back_per_batch(device, settings):
    # 354 training rows in batches of 8: 45 steps an epoch, whose reads back to the host
    # would be 45 or more; the epoch's own are its end (the last gradient's norm) and
    # the chunk's shuffle. On the CPU the count covers torch's calls (NumPy's cannot
    # wait); on a GPU, torch's sync debug mode counts what it sees as well.
    in_torch = settings.get("path") == "small-in-torch"
    if in_torch:  # the small path's GPU code, run on the CPU (elsewhere it is NumPy)
        settings = {**settings, "path": "small"}
    config = check(TrainConfig(device=device.type, dtype="float64", batch_size=8, **settings))
    trainer = Trainer(prepare(load_dataset("diabetes"), config), config)
    if in_torch:
        from handgrad.training.paths import SmallBatchPath

        trainer.path = SmallBatchPath(numpy=False)
    trainer.fit(max_epochs=1)  # buffers and optimizer state made
    sync = torch.cuda.set_sync_debug_mode if device.type == "cuda" else None
    kept = getattr(trainer.optimizer, "state", {}).values()
    steps = [state["step"] for state in kept if "step" in state]
    import warnings

    with warnings.catch_warnings(record=True) as caught, HostReads(device, steps) as reads:
        warnings.simplefilter("always")
        if sync:
            sync("warn")
        try:
            trainer._train_epoch()
        finally:
            if sync:
                sync("default")
    synced = [w for w in caught if "synchroniz" in str(w.message)]
    assert reads.count <= 3, reads.count
    assert len(synced) <= 3, [str(w.message) for w in synced]
