"""GDRegressor among scikit-learn's tools: a Pipeline, a grid search, two rivals.

1. A ``Pipeline(StandardScaler, GDRegressor)`` tuned by ``GridSearchCV`` over the
   optimizer, the batch size and the learning rate.
2. The tuned pipeline, ``LinearRegression`` (the closed-form optimum) and
   ``SGDRegressor`` (one per target, through ``MultiOutputRegressor``) fitted on the same
   training rows of a multi-output problem; the test R² and the fit time of each are
   measured here and printed as a table.

Run: ``python examples/estimator_pipeline.py``
"""

from __future__ import annotations

import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from handgrad import GDRegressor
from handgrad.data.datasets import synthetic


def main() -> None:
    # 1. 1200 rows, 20 features, 3 targets; a quarter held out for the final table.
    data, _, _ = synthetic(samples=1200, features=20, targets=3, noise=1.0, seed=0)
    X_train, X_test, Y_train, Y_test = train_test_split(
        data.X, data.Y, test_size=0.25, random_state=0
    )

    # 2. The grid search. The pipeline scales, so GDRegressor need not. max_epochs caps
    #    the noisy mini-batch runs, whose loss never stalls as cleanly as full batch's;
    #    the runs it stops warn so (ConvergenceWarning), which is expected here.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    pipeline = make_pipeline(
        StandardScaler(), GDRegressor(standardize=False, max_epochs=200, random_state=0)
    )
    grid = GridSearchCV(
        pipeline,
        {
            "gdregressor__optimizer": ["gd", "adam"],
            "gdregressor__batch_size": [None, 200],
            "gdregressor__learning_rate": ["auto", 0.01],
        },
        cv=3,
    )
    started = time.perf_counter()
    grid.fit(X_train, Y_train)
    print(
        f"grid search: {len(grid.cv_results_['params'])} settings x 3 folds "
        f"in {time.perf_counter() - started:.1f} s"
    )
    best = {key.split("__")[1]: value for key, value in grid.best_params_.items()}
    print(f"best: {best}, cross-validated R2 {grid.best_score_:.4f}")

    # 3. The same training rows for each model; R² on the held-out quarter.
    models = {
        "GDRegressor (tuned)": grid.best_estimator_,
        "LinearRegression": LinearRegression(),
        "SGDRegressor x3": make_pipeline(
            StandardScaler(), MultiOutputRegressor(SGDRegressor(random_state=0))
        ),
    }
    print()
    print(f"{'model':<22}{'test R2':>10}{'fit (ms)':>12}")
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(X_train, Y_train)
        seconds = time.perf_counter() - started
        print(f"{name:<22}{model.score(X_test, Y_test):>10.4f}{1000 * seconds:>12.1f}")


if __name__ == "__main__":
    main()
