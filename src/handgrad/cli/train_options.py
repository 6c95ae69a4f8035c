"""The options of ``handgrad train``, and the settings and the data source they name.

Only what building the parser needs is imported here: ``handgrad train --help`` must not
wait seconds for torch.
"""

from __future__ import annotations

from pathlib import Path

from handgrad import config as cfg
from handgrad.cli import argtypes as types
from handgrad.data.datasets import DATASETS
from handgrad.errors import UserError

# Checkpoint at least this often (seconds of training) when --checkpoint-every is unset.
CHECKPOINT_SECONDS = 10.0


def add_options(p) -> None:
    """The options of ``handgrad train``, in groups, on the parser ``p``."""
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
        help="maximum epochs; with --resume, a new limit (default: 20000, or for "
        "full-batch descent at a fixed step the epochs its slowest direction needs)",
    )
    fit.add_argument(
        "--lr",
        type=types.learning_rate,
        default="auto",
        help="learning rate, or 'auto': derived from the data for the batch size and "
        "optimizer used, e.g. 1/L_B for batches of B rows (README, 'Defaults per batch "
        "size') (default: %(default)s)",
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
        help="stop when the validation loss has not improved for --patience epochs, not at "
        "the training optimum, and restore the best weights",
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
        "--precondition",
        choices=cfg.PRECONDITIONS,
        default="auto",
        help="'whiten': step in coordinates where the features are uncorrelated, so an "
        "ill-conditioned problem converges like a well-conditioned one; 'auto' whitens "
        "mini-batch runs whose condition number exceeds 1000 (default: %(default)s)",
    )
    split.add_argument(
        "--device",
        metavar="DEVICE",
        help="where to train: auto, cpu, cuda, cuda:1, ... or any device torch knows; 'auto' "
        "is cuda if there is one, else another accelerator torch has (such as xpu), else cpu "
        "(mps has no float64, which training needs); with --resume, where to go on "
        "(default: auto; with --resume, the run's own)",
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
            precondition=args.precondition,
            grad=args.grad,
            path=args.path,
            device="auto" if args.device is None else args.device,
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
