"""``handgrad train --resume RUN``: continue an interrupted run, from its last checkpoint.

A run that ended by itself is not resumed: one that converged (or stopped early) has
nothing left to do, one that reached its epoch limit needs a higher ``--epochs``, and one
that diverged would diverge again.
"""

from __future__ import annotations

import os
import sys

from handgrad import config as cfg
from handgrad.cli.train import execute, load_source, painter_for_rank, where
from handgrad.errors import UserError
from handgrad.runs.rundir import RunDirectory

# Flags that --resume takes; all others come from the run's config.json. A checkpoint
# holds its state on the CPU (Trainer.state), so a run goes on on any device.
RESUME_FLAGS = ("epochs", "quiet", "checkpoint_every", "device")


def resume(args) -> int:
    """Continue the run ``args.resume`` with its recorded settings (``--epochs`` may rise)."""
    from handgrad.cli import build_parser

    defaults = vars(build_parser().parse_args(["train"]))
    given = [
        f"--{key.replace('_', '-')}"
        for key, value in vars(args).items()
        if key in defaults and key not in RESUME_FLAGS + ("resume",) and value != defaults[key]
    ]
    if given:
        raise UserError(
            f"--resume continues a run with its own settings; drop {', '.join(given)} "
            "(only --epochs, --checkpoint-every, --device and --quiet may change)."
        )
    from handgrad.distributed import launch

    def read():  # on rank 0 alone under torchrun; the others get what it read
        run_dir = RunDirectory.open(args.resume)
        recorded = run_dir.read_config()
        # A run recorded before whitening existed stepped plainly: it resumes so.
        recorded["config"].setdefault("precondition", "none")
        cfg.check(cfg.TrainConfig(**recorded["config"]))
        check_unfinished(run_dir, args.epochs)
        return run_dir, recorded

    run_dir, recorded = launch.from_writer(read)
    config = cfg.check(cfg.TrainConfig(**recorded["config"]))
    if args.epochs:
        config = cfg.check(config.replace(max_epochs=args.epochs))
    if args.device:
        config = cfg.check(config.replace(device=args.device))
    else:
        check_device(run_dir, config.device)
    with painter_for_rank() as painter:
        return proceed(args, config, run_dir, recorded, painter)


def proceed(args, config: cfg.TrainConfig, run_dir: RunDirectory, recorded: dict, painter) -> int:
    """Resume the run in ``run_dir`` with ``config``: its data, checkpoint and logs.

    Under torchrun, rank 0 reads the checkpoint and hands it to every rank, whatever
    their number; the others get no ``run_dir`` (they write nothing).
    """
    source = recorded["source"]
    if "data" in source:
        source = source | {key: shown(source[key]) for key in ("data", "target_file")}
    from handgrad.distributed import launch

    loaded = launch.together(lambda: load_source(source))
    reducer = launch.reducer_for(config.deterministic)

    from handgrad.runs.checkpoint import load_checkpoint
    from handgrad.runs.tensorboard import logged_epochs
    from handgrad.training import Trainer

    data = launch.prepare(loaded, config, reducer)
    torchrun = recorded["fingerprint"].startswith("groups:")  # distributed.sharded's
    if torchrun != data.fingerprint().startswith("groups:"):
        raise UserError(
            f"{run_dir.path} was started "
            + (
                "under torchrun; resume it under torchrun (any number of ranks, 1 included)."
                if torchrun
                else "in one process; resume it without torchrun."
            )
        )
    if data.fingerprint() != recorded["fingerprint"]:
        raise UserError(
            f"the data of {run_dir.path} changed since the run started; resuming would not "
            "continue the same descent. Start a new run."
        )

    def read():
        state, seconds = load_checkpoint(run_dir.checkpoint)
        # TensorBoard holds the epochs up to the last checkpoint, or fewer after a kill
        # -9; anything past the checkpoint is dropped, so each epoch is logged once.
        return state, seconds, logged_epochs(run_dir.tensorboard, state.epoch)

    state, seconds, logged = launch.from_writer(read)
    if args.epochs is not None and args.epochs <= state.epoch:
        raise UserError(
            f"--epochs {args.epochs} is not above the {state.epoch} epochs {run_dir.path} has "
            f"done; give a higher limit (e.g. --epochs {2 * state.epoch}), or leave --epochs "
            "out to keep the run's own."
        )
    trainer = Trainer(data, config, reducer)
    trainer.load_state(state)
    trainer.train_seconds = seconds
    if not args.quiet:
        print(f"resuming {run_dir.path} {where(state.epoch, state.position)}", file=sys.stderr)
    if not launch.world.current().is_writer:
        run_dir = None
    return execute(run_dir, trainer, args, painter, logged=logged)


def check_device(run_dir: RunDirectory, device: str) -> None:
    """Refuse, with the way on, a run recorded on a device this machine lacks."""
    from handgrad.devices import resolve_device

    try:
        resolve_device(device)
    except UserError:
        raise UserError(
            f"{run_dir.path} was trained with --device {device}, which this machine does "
            f"not have; go on elsewhere with --resume {run_dir.path} --device cpu (the "
            "same descent, equal up to rounding)."
        ) from None


def check_unfinished(run_dir: RunDirectory, epochs: int | None) -> None:
    """Refuse to resume a run that ended by itself, unless --epochs raises its limit."""
    metrics = run_dir.read_metrics()
    reason = metrics.get("stop_reason") if metrics else None
    done = metrics.get("epochs") if metrics else None
    where = run_dir.path
    if reason in ("converged", "tol", "early_stopping"):
        why = {
            "converged": "it reached the optimum",
            "tol": "the loss stopped improving",
            "early_stopping": "early stopping ended it",
        }[reason]
        raise UserError(
            f"{where} is finished: {why} at epoch {done}, so there is nothing to resume. "
            f"Its model is in {where / 'model'}; for another run, leave out --resume."
        )
    if reason == "max_epochs" and (epochs is None or epochs <= done):
        raise UserError(
            f"{where} is finished: it reached its limit of {done} epochs. To train on, "
            f"raise the limit: handgrad train --resume {where} --epochs {2 * done}"
        )
    if reason == "diverged":
        raise UserError(
            f"{where} diverged at epoch {done}; resuming would diverge again at the same "
            "learning rate. Start a new run with a smaller --lr."
        )


def shown(path: str | None) -> str | None:
    """A recorded absolute path as a message should show it: relative below the current
    folder (as the user most likely typed it), absolute elsewhere."""
    if path is None:
        return None
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative
