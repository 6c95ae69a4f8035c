"""``handgrad train``: fit a linear regression by gradient descent, into a new run directory."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from handgrad import config as cfg
from handgrad.cli import argtypes as types
from handgrad.data.datasets import DATASETS
from handgrad.errors import DataWarning, UserError
from handgrad.runs.painter import Painter

# Only what building the parser needs is imported above: `handgrad train --help` must not
# wait seconds for torch. The run imports the rest when it starts.
if TYPE_CHECKING:
    from handgrad.data.sources import Source
    from handgrad.runs.rundir import RunDirectory
    from handgrad.training import Trainer

# Checkpoint at least this often (seconds of training) when --checkpoint-every is unset.
CHECKPOINT_SECONDS = 10.0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="fit a linear regression by gradient descent",
        description="Fit W and b of Y ≈ XW + b by gradient descent on the hand-written "
        "Linear and MSE Functions. Writes a new run directory.",
    )
    data = p.add_argument_group("data (an embedded data set, or a file of your own)")
    data.add_argument(
        "--dataset", choices=DATASETS, help="embedded data set (default: diabetes, without --data)"
    )
    data.add_argument(
        "--data",
        metavar="FILE",
        help="CSV, Parquet (file or folder), .npz, or .npy features with --target-file "
        "(default: none)",
    )
    data.add_argument(
        "--target",
        type=types.columns,
        action="extend",
        metavar="COLS",
        help="target column(s) of --data, comma-separated (default: Y's columns for .npz; "
        "needed for tables)",
    )
    data.add_argument(
        "--features",
        metavar="COLS|N",
        help="feature columns of --data (default: the other numeric columns); "
        "with --dataset synthetic, the number of features (default: 10)",
    )
    data.add_argument(
        "--target-file",
        metavar="FILE",
        help="targets in a second file, row for row (default: none; targets are in --data)",
    )
    data.add_argument(
        "--samples",
        type=types.positive_int,
        default=1000,
        help="synthetic: number of rows (default: %(default)s)",
    )
    data.add_argument(
        "--targets",
        type=types.positive_int,
        default=1,
        help="synthetic: number of targets (default: %(default)s)",
    )
    data.add_argument(
        "--noise",
        type=types.non_negative_float,
        default=0.1,
        help="synthetic: noise standard deviation (default: %(default)s)",
    )
    fit = p.add_argument_group("descent")
    fit.add_argument(
        "--epochs",
        type=types.positive_int,
        help=f"maximum epochs; with --resume, a new limit (default: {cfg.TrainConfig.max_epochs})",
    )
    fit.add_argument(
        "--lr",
        type=types.learning_rate,
        default="auto",
        help="learning rate, or 'auto' = 1/L, L the largest curvature of the loss on the "
        "data (default: %(default)s)",
    )
    fit.add_argument(
        "--batch-size",
        type=types.batch_size,
        default=None,
        metavar="N|full",
        help="rows per step: 'full', N for mini-batch, 1 for SGD (default: full)",
    )
    fit.add_argument(
        "--optimizer",
        choices=cfg.OPTIMIZERS,
        default="auto",
        help="'auto' (default): heavy ball with the optimal rate and momentum for full "
        "batch, else 'gd'; 'gd' = w <- w - lr*grad; or a torch.optim optimizer",
    )
    fit.add_argument(
        "--momentum",
        type=types.non_negative_float,
        default=0.0,
        help="heavy-ball momentum in [0, 1), with --optimizer sgd (default: %(default)s)",
    )
    fit.add_argument(
        "--nesterov", action="store_true", help="Nesterov momentum, with --optimizer sgd"
    )
    fit.add_argument(
        "--scheduler",
        choices=cfg.SCHEDULERS,
        default="auto",
        help="learning-rate schedule: 'auto' (default) halves the rate on a stall of "
        "mini-batch descent; or one of torch.optim.lr_scheduler's",
    )
    fit.add_argument(
        "--lr-step-size",
        type=types.positive_int,
        default=None,
        metavar="EPOCHS",
        help="--scheduler step: epochs between decays (default: 1000)",
    )
    fit.add_argument(
        "--lr-gamma",
        type=types.positive_float,
        default=None,
        metavar="FACTOR",
        help="decay factor in (0, 1] of a decaying --scheduler "
        "(default: 0.1 for step and plateau, 0.999 for exponential)",
    )
    fit.add_argument(
        "--tol",
        type=types.non_negative_float,
        default=None,
        help="stop within this relative gap of the optimum (default: 1e-7 full batch, "
        "1e-10 with --dtype float64, 1e-4 mini-batch)",
    )
    fit.add_argument(
        "--patience",
        type=types.positive_int,
        default=20,
        metavar="EPOCHS",
        help="stalled epochs in a row before stopping (default: %(default)s)",
    )
    fit.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop on the validation loss and restore the best weights",
    )
    fit.add_argument(
        "--grad",
        choices=cfg.GRADIENTS,
        default="manual",
        help="chain the backward passes by hand, or through autograd (default: %(default)s)",
    )
    fit.add_argument(
        "--path",
        choices=cfg.PATHS,
        default="auto",
        help="how each step's gradient is computed: 'auto' picks the fastest exact one, "
        "'chained' forces Linear then MSE, the teaching path (default: %(default)s)",
    )
    split = p.add_argument_group("splits, scaling, hardware")
    split.add_argument(
        "--test-fraction",
        type=types.fraction,
        default=0.2,
        metavar="F",
        help="fraction of the rows held out for testing (default: %(default)s)",
    )
    split.add_argument(
        "--val-fraction",
        type=types.fraction,
        default=None,
        metavar="F",
        help="fraction held out for validation (default: 0.1 with --early-stopping, else 0)",
    )
    split.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split, the mini-batch order and the synthetic data "
        "(default: %(default)s)",
    )
    split.add_argument(
        "--no-standardize",
        action="store_true",
        help="train on raw features, not standardised on the training rows",
    )
    split.add_argument(
        "--standardize-targets",
        action="store_true",
        help="standardise the targets too (metrics stay in the targets' units)",
    )
    split.add_argument(
        "--device",
        choices=cfg.DEVICES,
        default="auto",
        help="where to train: 'auto' is cuda, then mps, then cpu (default: %(default)s)",
    )
    split.add_argument(
        "--dtype",
        choices=cfg.DTYPES,
        default="float32",
        help="precision of the descent; metrics are exact, in float64 (default: %(default)s)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--out", metavar="DIR", help="new run directory, never overwritten (default: runs/<time>)"
    )
    out.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the interrupted run in DIR, from its last checkpoint (default: none)",
    )
    out.add_argument(
        "--checkpoint-every",
        type=types.positive_int,
        metavar="EPOCHS",
        help=f"checkpoint every N epochs (default: every {CHECKPOINT_SECONDS:g} s of training)",
    )
    out.add_argument(
        "--quiet",
        action="store_true",
        help="print only the run's folder (for scripts), errors, and the warning of a run "
        "that did not converge",
    )
    out.add_argument(
        "--deterministic",
        action="store_true",
        help="add the partial sums group by group in the data's order, so that results "
        "are bit-identical for any number of torchrun processes (docs/distributed.md)",
    )
    p.set_defaults(run=run)
    return p


def _flag(setting: str, value) -> str:
    """A setting as typed on the command line: "--momentum 0.9", or the flag alone."""
    flag = "--" + setting.replace("_", "-")
    if value is None or value is True:
        return flag
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def config_from_args(args) -> cfg.TrainConfig:
    config = _config_from_args(args)
    for ignored in cfg.ignored_settings(config):  # a flag that would do nothing
        raise UserError(ignored.message(_flag))
    return config


def _config_from_args(args) -> cfg.TrainConfig:
    return cfg.check(
        cfg.TrainConfig(
            max_epochs=args.epochs,
            learning_rate=args.lr,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            momentum=args.momentum,
            nesterov=args.nesterov,
            scheduler=args.scheduler,
            lr_step_size=args.lr_step_size,
            lr_gamma=args.lr_gamma,
            tol=args.tol,
            n_iter_no_change=args.patience,
            early_stopping=args.early_stopping,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            seed=args.seed,
            standardize=not args.no_standardize,
            standardize_targets=args.standardize_targets or None,
            grad=args.grad,
            path=args.path,
            device=args.device,
            dtype=args.dtype,
            deterministic=args.deterministic,
        )
    )


def source_from_args(args) -> dict:
    """Where the data comes from, as recorded in config.json for --resume."""
    if args.data is not None:
        if args.dataset is not None:
            raise UserError("give either --dataset or --data, not both.")
        return {
            "data": str(Path(args.data).resolve()),
            "target": args.target,
            "features": types.columns(args.features) if args.features else None,
            "target_file": str(Path(args.target_file).resolve()) if args.target_file else None,
        }
    for flag, value in (("--target", args.target), ("--target-file", args.target_file)):
        if value:
            raise UserError(f"{flag} goes with --data FILE; embedded data sets name their own.")
    name = args.dataset or "diabetes"
    if name != "synthetic":
        if args.features:
            raise UserError("--features goes with --data FILE or --dataset synthetic.")
        return {"dataset": name}
    try:
        features = int(args.features) if args.features else 10
    except ValueError:
        raise UserError(
            f"--features with --dataset synthetic is a number of features; got {args.features!r}."
        ) from None
    return {
        "dataset": name,
        "samples": args.samples,
        "features": features,
        "targets": args.targets,
        "noise": args.noise,
        "seed": args.seed,
    }


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
    from handgrad.runs.outputs import save_progress, summary, write_results
    from handgrad.training import DivergedError

    progress = Progress(trainer, trainer.epoch, quiet)
    stop = {"signal": None}
    last = {"time": time.monotonic(), "logged": logged}

    def on_signal(signum, frame):
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
        # and a checkpoint falls due within it, both with the position (trainer.py).
        if stop["signal"] is None and time.monotonic() - last["time"] > CHECKPOINT_SECONDS:
            last["logged"] = save_progress(run_dir, t, last["logged"])
            last["time"] = time.monotonic()
        return stop["signal"] is not None

    if not trainer.data.source.in_memory:
        trainer.chunk_hook = chunk_hook
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        trainer.fit(callback)
        diverged = None
    except DivergedError as error:
        diverged = error
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        progress.close(trainer)
    if run_dir is None:  # not the writer of a torchrun job: it helps measure, then ends
        trainer.metrics()
        if diverged is not None:
            raise diverged
        return 128 + stop["signal"] if stop["signal"] is not None else 0
    save_progress(run_dir, trainer, last["logged"])
    metrics = trainer.metrics()
    name = trainer.data.source.name
    metrics["data"] = name
    finished = diverged is None and stop["signal"] is None
    write_results(run_dir, trainer, metrics, save_model=finished, draw=painter.draw)
    painter.finish()
    if diverged is not None:
        raise diverged
    if stop["signal"] is not None:
        at = f"epoch {trainer.epoch}"
        if trainer.position is not None:
            groups, chunks = trainer.position[:2]
            at = f"chunk {chunks} of group {groups + 1} of epoch {trainer.epoch + 1}"
        print(
            f"handgrad train: stopped at {at} by "
            f"{signal.Signals(stop['signal']).name}; checkpoint saved. "
            f"Continue with: handgrad train --resume {run_dir.path}",
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
