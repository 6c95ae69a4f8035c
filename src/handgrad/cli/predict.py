"""``handgrad predict``: predictions of a trained model for a file of features."""

from __future__ import annotations

import sys

from handgrad.model import LinearModel
from handgrad.runs.rundir import RunDirectory


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained model",
        description="Predict the targets for the rows of a CSV, Parquet or .npz file of "
        "features, with the model of a 'handgrad train' run.",
    )
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="a run directory")
    p.add_argument("--data", required=True, metavar="FILE", help="features to predict for")
    p.add_argument("--out", metavar="FILE", help="CSV to write (default: standard output)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from handgrad.data.files import load_prediction_file, write_predictions_csv

    model = LinearModel.load(RunDirectory(args.model).model)
    X, _ = load_prediction_file(args.data, model.feature_names, model.target_names)
    Y = model.predict(X)
    if args.out is None:
        import pandas as pd

        pd.DataFrame(Y, columns=list(model.target_names)).to_csv(sys.stdout, index=False)
    else:
        write_predictions_csv(args.out, Y, model.target_names)
        print(f"wrote {len(Y)} predictions to {args.out}", file=sys.stderr)
    return 0
