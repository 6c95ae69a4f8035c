"""The pieces of ``handgrad.distributed`` that need no second process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handgrad.cli import _speaks
from handgrad.distributed import world
from handgrad.distributed.reduce import PeerFailedError, Reducer
from handgrad.errors import UserError

TORCHRUN = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}


def test_the_world_comes_from_torchruns_variables():
    assert world.from_environment({}) is None  # not under torchrun: nothing changes
    found = world.from_environment(TORCHRUN)
    assert (found.rank, found.size, found.local_rank, found.local_size) == (3, 4, 1, 2)
    assert not found.is_writer
    assert [c for c in range(10) if found.owns(c)] == [3, 7]  # chunk c to rank c mod 4


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_a_bad_timeout_is_a_user_error(value):
    with pytest.raises(UserError, match="HANDGRAD_DIST_TIMEOUT must be a number"):
        world.timeout_seconds({world.TIMEOUT_VARIABLE: value})
    assert world.timeout_seconds({world.TIMEOUT_VARIABLE: "12.5"}) == 12.5


@pytest.mark.parametrize("deterministic", [False, True])
def test_one_rank_sums_every_chunk_into_its_own_total(deterministic):
    rng = np.random.default_rng(0)
    parts = {c: rng.standard_normal((3, 2)) for c in range(5)}
    owners = ["a", "b", "a", "a", "b"]
    reducer = Reducer(world.World(), deterministic)
    totals = reducer.sum({"a": (3, 2), "b": (3, 2)}, owners, lambda: parts)
    np.testing.assert_array_equal(totals["a"], (0.0 + parts[0]) + parts[2] + parts[3])
    np.testing.assert_array_equal(totals["b"], (0.0 + parts[1]) + parts[4])
    assert reducer.calls == 1


def test_one_rank_raises_its_own_error_unchanged():
    def fail():
        raise UserError("data.csv, row 7: 'abc' is not a number.")

    with pytest.raises(UserError, match="row 7"):
        Reducer(world.World()).sum({"a": (1,)}, ["a"], fail)


def test_one_rank_speaks_for_all(monkeypatch):
    error = UserError("a bad flag")
    monkeypatch.setenv("RANK", "0")
    assert _speaks(error)
    assert not _speaks(PeerFailedError(1, 2))
    monkeypatch.setenv("RANK", "1")
    assert not _speaks(error)
    error.report = True  # the lowest failing rank, as Reducer.sum marks it
    assert _speaks(error)


def test_a_rank_shares_out_each_slot_exactly():
    rng = np.random.default_rng(1)
    parts = {0: rng.standard_normal(3), 2: rng.standard_normal(1)}
    got = Reducer(world.World()).gather([3, 2, 1], lambda: parts)
    assert [list(g) for g in got] == [list(parts[0]), [0.0, 0.0], list(parts[2])]


def test_a_deterministic_exchange_too_large_is_refused():
    sizes = [1 << 20] * 200  # 200 chunks' partials of 8 MiB each
    with pytest.raises(UserError, match="drop --deterministic"):
        Reducer(world.World(), deterministic=True).gather(sizes, dict)


def test_nothing_to_sum_still_runs_the_work():
    seen = []
    assert Reducer(world.World()).sum({}, [], lambda: seen.append(1) or {}) == {}
    assert seen == [1]


def test_a_run_of_one_process_is_not_resumed_as_a_torchrun_job(tmp_path, capsys):
    """The fingerprint of a torchrun job hashes each group's moments; a run's kind is
    told apart, with a message that says how to resume it, not that the data changed."""
    from handgrad.cli import main

    run = tmp_path / "run"
    assert main(["train", "--quiet", "--epochs", "3", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    config["fingerprint"] = "groups:" + config["fingerprint"]
    (run / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(run), "--epochs", "6"]) == 2
    assert "was started under torchrun; resume it under torchrun" in capsys.readouterr().err
