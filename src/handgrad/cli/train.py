"""``handgrad train``: fit a linear regression by gradient descent, into a new run directory."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import warnings
from typing import TYPE_CHECKING

from handgrad import config as cfg
from handgrad.cli.train_options import (
    CHECKPOINT_SECONDS,
    add_options,
    config_from_args,
    source_from_args,
)
from handgrad.errors import DataWarning
from handgrad.runs.painter import Painter

# Only what building the parser needs is imported above: `handgrad train --help` must not
# wait seconds for torch. The run imports the rest when it starts.
if TYPE_CHECKING:
    from pathlib import Path

    from handgrad.data.sources import Source
    from handgrad.runs.rundir import RunDirectory
    from handgrad.training import Trainer


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="fit a linear regression by gradient descent",
        description="Fit W and b of Y ≈ XW + b by gradient descent on the hand-written "
        "Linear and MSE Functions. Writes a new run directory.",
    )
    add_options(p)
    p.set_defaults(run=run)
    return p


def load_source(source: dict) -> Source:
    """The chunk source of the data: an embedded set in memory, or a file, streamed if
    large (``handgrad.data.stream.open_source``). Its cells are checked as they are read."""
    if "dataset" in source:
        from handgrad.data.datasets import load_dataset

        options = {k: v for k, v in source.items() if k != "dataset"}
        from handgrad.data.sources import ArraySource

        return ArraySource.of(load_dataset(source["dataset"], **options))
    from handgrad.data.stream import open_source

    return open_source(source["data"], source["target"], source["features"], source["target_file"])


def run(args) -> int:
    from handgrad.distributed import launch

    if not launch.join():  # under torchrun, rank 0 alone prints and writes (issue 13)
        args.quiet = True
    if args.resume:
        from handgrad.cli.resume import resume

        return resume(args)
    config = config_from_args(args)
    source = source_from_args(args)
    with painter_for_rank() as painter:  # started now, it imports matplotlib while torch loads
        return start(args, config, source, painter)


def painter_for_rank():
    """The ``Painter``; none on the ranks of a torchrun job that do not write."""
    from handgrad.distributed import world

    return Painter() if world.current().is_writer else contextlib.nullcontext()


def start(args, config: cfg.TrainConfig, source: dict, painter) -> int:
    """Load the data, make the run directory and train: a new run."""
    # config.json records absolute paths, so that --resume works from any folder; the
    # files are read by the paths as typed, so that messages show them that way.
    typed = {"data": args.data, "target_file": args.target_file} if "data" in source else {}
    from handgrad.distributed import launch

    # Under torchrun a bad file on one rank stops all; each rank reads its own chunks.
    loaded = launch.together(lambda: load_source(source | typed))
    reducer = launch.reducer_for(config.deterministic)

    from handgrad.runs.rundir import RunDirectory
    from handgrad.training import Trainer

    data = launch.prepare(loaded, config, reducer)
    trainer = Trainer(data, config, reducer)

    def create() -> RunDirectory:
        run_dir = RunDirectory.create(args.out)
        run_dir.write_config(
            {"config": config.to_dict(), "source": source, "fingerprint": data.fingerprint()}
        )
        return run_dir

    return execute(launch.from_writer(create, share=False), trainer, args, painter)


def execute(run_dir: RunDirectory | None, trainer: Trainer, args, painter, logged=0) -> int:
    """Train with checkpoints and signal handling; write the results; print the summary.

    ``run_dir`` is None on the ranks of a torchrun job other than 0: they write nothing.
    """
    quiet = args.quiet
    if trainer.data.constant_features:
        # Shown as one line (or not at all with --quiet) by the CLI's warning handler.
        warnings.warn(
            f"constant feature(s) {', '.join(trainer.data.constant_features)} carry no "
            "information; their weights stay 0.",
            DataWarning,
            stacklevel=1,
        )
    if not trainer.reference.unique:
        warnings.warn(
            "the least-squares optimum is not unique (more features than rows, or collinear "
            "features): the reference is the minimum-norm solution; training goes on.",
            DataWarning,
            stacklevel=1,
        )
    from handgrad.cli.progress import Progress
    from handgrad.runs.outputs import save_progress
    from handgrad.training import DivergedError

    progress = Progress(trainer, trainer.epoch, quiet)
    stop = {"signal": None}
    last = {"time": time.monotonic(), "logged": logged}

    def on_signal(signum, frame):
        if stop.get("trained"):  # the final pass: finish it, unless asked twice
            if "late" not in stop:
                stop["late"] = signum
                print(
                    "handgrad train: training is over; writing its results. Press "
                    "Ctrl-C again to abandon them.",
                    file=sys.stderr,
                )
                signal.signal(signal.SIGINT, signal.default_int_handler)
            return
        stop["signal"] = signum
        if trainer.reducer is not None:  # posted to every rank at the next all-reduce
            trainer.reducer.stop_requested = signum

    def callback(t: Trainer) -> bool:
        progress(t)
        every = args.checkpoint_every
        due = (
            t.epoch % every == 0 if every else time.monotonic() - last["time"] > CHECKPOINT_SECONDS
        )
        if due and run_dir is not None:
            last["logged"] = save_progress(run_dir, t, last["logged"])
            last["time"] = time.monotonic()
        if t.reducer is not None and t.path.name != "stats":
            # Ranks that meet at every step stop after the step where all of them learnt
            # of a signal, not each at its own (issue 13).
            stop["signal"] = t.reducer.stop_agreed or None
        return stop["signal"] is not None

    def chunk_hook(t: Trainer) -> bool:
        # Streamed data: an epoch may take minutes, so a signal stops it at the next chunk
        # (under torchrun, the next group, once every rank knows of it) and a checkpoint
        # falls due within it, both with the position (trainer.py).
        if t.reducer is not None:
            stop["signal"] = t.reducer.stop_agreed or None
        due = time.monotonic() - last["time"] > CHECKPOINT_SECONDS
        if stop["signal"] is None and due and run_dir is not None:
            last["logged"] = save_progress(run_dir, t, last["logged"])
            last["time"] = time.monotonic()
        return stop["signal"] is not None

    if not trainer.data.source.in_memory:
        trainer.chunk_hook = chunk_hook
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            trainer.fit(callback)
            diverged = None
        except DivergedError as error:
            diverged = error
        finally:
            progress.close(trainer)
        # A signal from here on must not cut the final pass short: the checkpoint does
        # not know training ended, so a resume would train on past where it stopped.
        stop["trained"] = True
        return _finish(run_dir, trainer, painter, quiet, diverged, stop, last["logged"])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def where(epoch: int, position) -> str:
    """Where a run stopped, as its stop message and its resume say: "after epoch 3", or
    "at chunk 2 of group 5 of epoch 4" (part way; epochs counted from 1)."""
    if position is None:
        return f"after epoch {epoch}"
    groups, chunks = position[:2]
    if chunks == 0:  # a group's end (torchrun stops between groups)
        return f"after group {groups} of epoch {epoch + 1}"
    return f"at chunk {chunks} of group {groups + 1} of epoch {epoch + 1}"


def _finish(run_dir, trainer: Trainer, painter, quiet: bool, diverged, stop, logged) -> int:
    """After training: measure the final weights, write the results, print the summary."""
    from handgrad.runs.outputs import save_progress, summary, write_results

    if run_dir is None:  # not the writer of a torchrun job: the writer measures, alone
        if diverged is not None:
            raise diverged
        return 128 + stop["signal"] if stop["signal"] is not None else 0
    save_progress(run_dir, trainer, logged)
    metrics = trainer.metrics()
    name = trainer.data.source.name
    metrics["data"] = name
    finished = diverged is None and stop["signal"] is None
    write_results(run_dir, trainer, metrics, save_model=finished, draw=painter.draw)
    painter.finish()
    if diverged is not None:
        raise diverged
    if stop["signal"] is not None:
        print(
            f"handgrad train: stopped {where(trainer.epoch, trainer.position)} by "
            f"{signal.Signals(stop['signal']).name}; checkpoint saved. "
            f"Continue with: {_resume_command(trainer, run_dir.path)}",
            file=sys.stderr,
        )
        return 128 + stop["signal"]
    if not metrics["converged"]:  # one line, shown by the CLI's warning handler
        from handgrad.training.convergence import NotConvergedWarning, advice

        warnings.warn(advice(metrics, trainer), NotConvergedWarning, stacklevel=1)
    if not quiet:
        n, p = len(trainer.data.feature_names), len(trainer.data.target_names)
        print(
            f"handgrad train: {name}: {n} feature{'s' * (n != 1)} -> {p} "
            f"target{'s' * (p != 1)}, {trainer.data.train.n_samples} training rows"
        )
        print(summary(metrics, trainer, run_dir))
    else:
        print(run_dir.path)
    return 0


def _resume_command(trainer: Trainer, run: Path) -> str:
    """The command that resumes this run: a torchrun job resumes under torchrun."""
    if trainer.data.fingerprint().startswith("groups:"):  # distributed.sharded's
        return f"torchrun --nproc-per-node N -m handgrad train --resume {run} (any N, 1 too)"
    return f"handgrad train --resume {run}"
