"""The embedded data sets: nothing is downloaded.

diabetes and linnerud are read straight from the files that scikit-learn ships in
``sklearn/datasets/data``: importing ``sklearn.datasets`` to read them took one to three
seconds of every ``handgrad train --dataset ...``. The result is the same array, bit for
bit, as ``load_diabetes()`` and ``load_linnerud()`` (a test compares them); where those
files are not found, scikit-learn's loaders are used.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from handgrad.data.dataset import Dataset
from handgrad.errors import UserError

if TYPE_CHECKING:  # numpy is imported where it is used: `handgrad train --help` needs none
    import numpy as np

DATASETS = ("diabetes", "linnerud", "synthetic")
DIABETES_FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


def _sklearn_data() -> Path | None:
    """scikit-learn's folder of data files, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    names = ("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz", "linnerud_exercise.csv")
    return folder if all((folder / name).is_file() for name in names) else None


def _standardised_like_sklearn(X):
    """``sklearn.preprocessing.scale(X) / sqrt(q)``, step for step, so the bits agree."""
    import numpy as np

    mean, scale = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    X -= mean
    mean_1 = np.nanmean(X, axis=0)
    if not np.allclose(mean_1, 0):
        X -= mean_1
    X /= np.where(scale < 10 * np.finfo(scale.dtype).eps, 1.0, scale)
    mean_2 = np.nanmean(X, axis=0)
    if not np.allclose(mean_2, 0):
        X -= mean_2
    X /= X.shape[0] ** 0.5
    return X


def diabetes() -> Dataset:
    """scikit-learn's diabetes data: 442 patients, 10 features, 1 target (progression).

    The features are scaled as ``load_diabetes()`` scales them: centred, and divided by
    their standard deviation times sqrt(442).
    """
    import numpy as np

    folder = _sklearn_data()
    if folder is None:
        from sklearn.datasets import load_diabetes

        X, y = load_diabetes(return_X_y=True)
    else:
        with gzip.open(folder / "diabetes_data_raw.csv.gz", "rt", encoding="utf-8") as f:
            X = _standardised_like_sklearn(np.loadtxt(f))
        with gzip.open(folder / "diabetes_target.csv.gz", "rt", encoding="utf-8") as f:
            y = np.loadtxt(f)
    return Dataset(
        X=np.asarray(X, dtype=np.float64),
        Y=np.asarray(y, dtype=np.float64).reshape(-1, 1),
        feature_names=DIABETES_FEATURES,
        target_names=("progression",),
        name="diabetes",
    )


def linnerud() -> Dataset:
    """scikit-learn's Linnerud data: 3 exercises (features) -> 3 body measurements."""
    import numpy as np

    folder = _sklearn_data()
    if folder is None:
        from sklearn.datasets import load_linnerud

        bunch = load_linnerud()
        X, Y = bunch.data, bunch.target
        feature_names, target_names = bunch.feature_names, bunch.target_names
    else:
        tables = []
        for name in ("linnerud_exercise.csv", "linnerud_physiological.csv"):
            with open(folder / name, encoding="utf-8") as f:
                header = f.readline().split()
                tables.append((header, np.loadtxt(f)))
        (feature_names, X), (target_names, Y) = tables
    return Dataset(
        X=np.asarray(X, dtype=np.float64),
        Y=np.asarray(Y, dtype=np.float64),
        feature_names=tuple(feature_names),
        target_names=tuple(target_names),
        name="linnerud",
    )


def synthetic(
    samples: int = 1000, features: int = 10, targets: int = 1, noise: float = 0.1, seed: int = 0
) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """A linear problem Y = X W + b + noise with known W (n, p) and b (p,).

    With ``samples=50, features=13, targets=3`` it is the classic lab's random problem.
    Returns the data set, W and b.
    """
    for name, value in (("samples", samples), ("features", features), ("targets", targets)):
        if value <= 0:
            raise UserError(f"--{name} must be a positive whole number; got {value}.")
    if noise < 0:
        raise UserError(f"--noise must be >= 0; got {noise}.")
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, features))
    W = rng.standard_normal((features, targets))
    b = rng.standard_normal(targets)
    Y = X @ W + b + noise * rng.standard_normal((samples, targets))
    data = Dataset(
        X=X,
        Y=Y,
        feature_names=tuple(f"x{i}" for i in range(features)),
        target_names=tuple(f"y{j}" for j in range(targets)),
        name=f"synthetic({samples}x{features}->{targets}, noise={noise})",
    )
    return data, W, b


def load_dataset(name: str, **synthetic_options) -> Dataset:
    """One of ``DATASETS`` by name; ``synthetic_options`` size the synthetic one."""
    if name == "diabetes":
        return diabetes()
    if name == "linnerud":
        return linnerud()
    if name == "synthetic":
        return synthetic(**synthetic_options)[0]
    raise UserError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}.")
