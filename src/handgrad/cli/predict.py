"""``handgrad predict``: predictions of a trained model for a file of features."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained model",
        description="Predict the targets for the rows of a CSV, Parquet or .npz file of "
        "features, with the model of a 'handgrad train' run.",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="RUN",
        help="the run directory of a finished 'handgrad train', or its model folder RUN/model",
    )
    p.add_argument(
        "--data", required=True, metavar="FILE", help="features to predict for: CSV, Parquet, .npz"
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
    at = f" at epoch {metrics['epochs']}" if metrics and "epochs" in metrics else ""
    raise UserError(
        f"{named} has no model: the run was interrupted{at} before it finished. "
        f"Finish it with: handgrad train --resume {named}"
    )


def run(args) -> int:
    from handgrad.data.files import load_prediction_file, write_predictions_csv
    from handgrad.model import LinearModel

    model = LinearModel.load(model_folder(args.model))
    X, _ = load_prediction_file(args.data, model.feature_names, model.target_names)
    Y = model.predict(X)
    if args.out is None:
        import pandas as pd

        pd.DataFrame(Y, columns=list(model.target_names)).to_csv(sys.stdout, index=False)
    else:
        write_predictions_csv(args.out, Y, model.target_names)
        print(f"wrote {len(Y)} predictions to {args.out}", file=sys.stderr)
    return 0
