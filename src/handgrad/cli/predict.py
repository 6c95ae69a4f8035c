"""``handgrad predict``: predictions of a trained model for a file of features."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained model",
        description="Predict the targets for the rows of a CSV, Parquet, .npz or .npy file "
        "of features, with the model of a 'handgrad train' run. Large files are streamed.",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="RUN",
        help="the run directory of a finished 'handgrad train', or its model folder RUN/model",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="features to predict for: CSV, Parquet, .npz, .npy",
    )
    p.add_argument(
        "--out", metavar="FILE", help="CSV to write, never overwritten (default: standard output)"
    )
    p.set_defaults(run=run)
    return p


def model_folder(text: str) -> Path:
    """The model folder that ``--model`` names (RUN or RUN/model), or a ``UserError`` that
    says why there is none: no such folder, or a run that never finished."""
    from handgrad.errors import UserError
    from handgrad.runs.rundir import RunDirectory

    path = Path(text)
    if (path / "model.json").is_file():
        return path
    if path.name == "model" and (path.parent / "config.json").is_file():
        run, named = RunDirectory(path.parent), str(path.parent)  # RUN/model of an unfinished run
    else:
        run, named = RunDirectory(path), text
    if run.model.is_dir():
        return run.model  # LinearModel.load says what is wrong inside it
    if not run.path.exists():
        raise UserError(f"--model {text}: no such run directory or model folder.")
    if not run.config.is_file():
        raise UserError(
            f"--model {text} is neither a run directory nor a model folder (it holds no "
            "config.json or model.json); give the folder that 'handgrad train' wrote."
        )
    metrics = run.read_metrics()
    reason = metrics.get("stop_reason") if metrics else None
    if reason == "diverged":
        raise UserError(
            f"{named} has no model: the run diverged at epoch {metrics['epochs']}. "
            "Train again with a smaller --lr."
        )
    done = metrics.get("epochs") if metrics else None
    at = f" after {done} full epoch{'s' * (done != 1)}" if done is not None else ""
    raise UserError(
        f"{named} has no model: the run was interrupted{at}, before it finished. "
        f"Finish it with: handgrad train --resume {named}"
    )


def run(args) -> int:
    # Chunk by chunk: a file larger than memory is predicted in bounded memory, and the
    # output appears (renamed from a temporary file) only once complete.
    from handgrad.data.predictions import feature_chunks, write_csv_chunks
    from handgrad.model import LinearModel

    model = LinearModel.load(model_folder(args.model))
    chunks = feature_chunks(args.data, model.feature_names, model.target_names)
    rows = write_csv_chunks(args.out, map(model.predict, chunks), model.target_names)
    if args.out is not None:
        print(f"wrote {rows} predictions to {args.out}", file=sys.stderr)
    return 0
