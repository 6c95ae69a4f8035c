"""``handgrad predict``: predictions of a trained model for a file of features."""

from __future__ import annotations

import sys

from handgrad.model import LinearModel
from handgrad.runs.rundir import RunDirectory


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained model",
        description="Predict the targets for the rows of a CSV, Parquet, .npz or .npy file "
        "of features, with the model of a 'handgrad train' run. Large files are streamed.",
    )
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="a run directory")
    p.add_argument("--data", required=True, metavar="FILE", help="features to predict for")
    p.add_argument("--out", metavar="FILE", help="CSV to write (default: standard output)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    # Chunk by chunk: a file larger than memory is predicted in bounded memory, and the
    # output appears (renamed from a temporary file) only once complete.
    from handgrad.data.predictions import feature_chunks, write_csv_chunks

    model = LinearModel.load(RunDirectory(args.model).model)
    chunks = feature_chunks(args.data, model.feature_names, model.target_names)
    rows = write_csv_chunks(args.out, map(model.predict, chunks), model.target_names)
    if args.out is not None:
        print(f"wrote {rows} predictions to {args.out}", file=sys.stderr)
    return 0
