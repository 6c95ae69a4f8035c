"""``GDRegressor``: the training core as a scikit-learn estimator.

Parameters are validated once, by scikit-learn's own ``_parameter_constraints`` table,
then mapped onto one ``TrainConfig``; ``prepare`` and ``Trainer`` do all the work. There
is no training loop here: ``fit`` is ``Trainer.fit()``, ``partial_fit`` is
``Trainer.fit(max_epochs=trainer.epoch + 1)``.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from handgrad.config import (
    DTYPES,
    OPTIMIZERS,
    PRECONDITIONS,
    TrainConfig,
    ignored_settings,
)
from handgrad.data.dataset import Dataset
from handgrad.data.scaling import Standardizer
from handgrad.devices import device_name, resolve_device
from handgrad.errors import UserError
from handgrad.model import LinearModel
from handgrad.training import DivergedError, Trainer, convergence, prepare
from handgrad.training.convergence import ESTIMATOR_NAMES, advice
from handgrad.training.precondition import Whitening
from handgrad.training.trainer import TrainState


def _to_numpy(A):
    """Torch tensors become numpy arrays; anything else goes to ``validate_data`` as is."""
    return A.detach().cpu().numpy() if isinstance(A, torch.Tensor) else A


def _fingerprint(X: np.ndarray, Y: np.ndarray) -> bytes:
    """A digest of the training data, to tell a repeated ``partial_fit`` batch from a new one."""
    digest = hashlib.blake2b(digest_size=16)
    for A in (X, Y):
        digest.update(str(A.shape).encode())
        digest.update(np.ascontiguousarray(A).tobytes())
    return digest.digest()


@dataclass(frozen=True)
class _Carried:
    """What ``partial_fit`` needs of an earlier fit to go on from it, as a pickled
    estimator keeps it instead of the trainer: the trainer holds the training rows, on
    the fit's device; this holds its state on the CPU, and the scaler it standardised with."""

    config: TrainConfig
    x_scaler: Standardizer
    state: TrainState

    @classmethod
    def of(cls, trainer: Trainer) -> _Carried:
        return cls(trainer.config, trainer.data.x_scaler, trainer.state())


def _spell(setting: str, value) -> str:
    """A setting as a GDRegressor parameter: "momentum=0.9", or the name alone."""
    return setting if value is None else f"{setting}={value!r}"


class GDRegressor(RegressorMixin, BaseEstimator):
    """Least squares by gradient descent on handgrad's hand-written ``Linear`` and ``MSE``.

    Minimises (1/q) Σ (X W + b − Y)² over the q training rows, with the same training core
    as ``handgrad train``. Features are standardised on the training rows (the descent
    converges in far fewer epochs); the fitted ``coef_`` and ``intercept_`` are given back
    in the data's own units.

    Parameters
    ----------
    learning_rate : float or "auto", default="auto"
        Step size. "auto" derives it from the data for the batch size and optimizer
        used (``handgrad.training.schedule``): e.g. 2/(L+μ) for full-batch "gd", L and
        μ the extreme eigenvalues of the loss's Hessian, 1/L_B for batches of B rows.
    max_epochs : int or None, default=None
        Most passes over the training rows; None: 20000, or for full-batch descent at a
        fixed step as many as its slowest direction needs. ``tol`` stops sooner.
    batch_size : int or None, default=None
        Rows per step; None is full batch, the exact gradient.
    optimizer : {"auto", "gd", "sgd", "adam", "adamw", "rmsprop", "adagrad"}, default="auto"
        "auto" is heavy-ball momentum with the optimal parameters for full batch at the
        auto rate, else "gd"; "gd" is w <- w - learning_rate * grad; the others are
        ``torch.optim``'s.
    momentum : float in [0, 1), default=0.0
        Momentum of ``optimizer="sgd"`` (an error with any other optimizer).
    tol : float or None, default=None
        Stop once the training MSE is within ``tol`` (relative) of the closed-form
        optimum. None: 1e-10 for full batch in float64 (predictions then match
        ``LinearRegression``'s to about 1e-5), 1e-7 in float32, 1e-4 for mini-batches.
        With early stopping, the relative improvement of the validation loss that counts.
    n_iter_no_change : int, default=20
        Epochs without progress before the rate is halved (mini-batch and adaptive
        runs) or the fit stops as stalled; momentum lengthens the window.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, monitor their MSE instead of the
        training loss, and keep the best weights. ``fit`` only: ``partial_fit`` trains
        on every row it is given.
    validation_fraction : float in (0, 1), default=0.1
        The rows held out for early stopping; used only when ``early_stopping=True``.
    shuffle : bool, default=True
        Reshuffle mini-batches every epoch (from the seed and the epoch number).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split and the mini-batch order. An int is used as the
        seed itself (``handgrad train --seed`` gives the same run); None draws a seed
        from numpy's global generator, as elsewhere in scikit-learn. With the default
        full batch and no early stopping, nothing is random and every fit is identical.
    standardize : bool, default=True
        Centre and scale the features on the training rows.
    precondition : {"auto", "none", "whiten"}, default="auto"
        "whiten" takes the steps in coordinates where the features are uncorrelated
        (from the training rows' second moments), so that an ill-conditioned problem
        converges as fast as a well-conditioned one; "auto" does so for mini-batch fits
        whose condition number exceeds 1000; "none" never. ``partial_fit`` goes on in the
        coordinates of the ``fit`` before it, and without one never whitens: each call's
        batch would bring coordinates of its own.
    device : str or torch.device, default="cpu"
        Where the tensors live: "cpu", "auto", "cuda", "cuda:1", ... or any device torch
        knows. "cpu": the estimator's fits are usually small and many (cross-validation,
        grid searches), where a GPU's launch and copy costs dominate. "auto" is "cuda" if
        there is one, else another accelerator torch has (such as "xpu"), else "cpu";
        "mps" is refused with a sentence (Apple's MPS has no float64, which training's
        statistics need).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the weights and data during training. float64, like scikit-learn's
        linear models, so that fits reach the least-squares optimum to well below 1e-4.
    verbose : int, default=0
        Above 0, print the training loss after every epoch and the reason for stopping.

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_features) or (n_features,)
        Weights in the data's own units; 1-D when y is 1-D, as in ``LinearRegression``.
    intercept_ : ndarray of shape (n_targets,) or float
        ``predict(X)`` is ``X @ coef_.T + intercept_``.
    n_iter_ : int
        Epochs run, over all ``fit`` or ``partial_fit`` calls since the trainer was set up.
    loss_curve_ : list of float
        Training MSE after each epoch.
    device_ : str
        The device the last fit ran on: "cpu", "xpu", or "cuda:0 (NVIDIA H200)" with
        the GPU's name.
    converged_ : bool
        Whether the training MSE ended within 1e-3 (relative) of the closed-form
        optimum; when not, ``fit`` also warns with scikit-learn's ``ConvergenceWarning``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X was a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from handgrad import GDRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = GDRegressor().fit(X, y)
    >>> round(model.score(X, y), 3)
    0.518
    """

    _parameter_constraints: dict = {
        "learning_rate": [Interval(Real, 0, np.inf, closed="neither"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "tol": [Interval(Real, 0, np.inf, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "standardize": ["boolean"],
        "precondition": [StrOptions(set(PRECONDITIONS))],
        "device": [str, torch.device],  # any device torch knows: resolved by fit
        "dtype": [StrOptions(set(DTYPES))],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        learning_rate="auto",
        max_epochs=None,
        batch_size=None,
        optimizer="auto",
        momentum=0.0,
        tol=None,
        n_iter_no_change=TrainConfig.n_iter_no_change,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        standardize=True,
        precondition="auto",
        device="cpu",
        dtype="float64",
        verbose=0,
    ):
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.momentum = momentum
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.standardize = standardize
        self.precondition = precondition
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    # --- public API ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train from zero weights until a stopping rule fires.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
        y : array-like or torch.Tensor of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : GDRegressor
        """
        X, Y, y_1d = self._validate_X_y(X, y, reset=True)
        config = self._config()
        self._trainer = self._run(
            lambda: Trainer(prepare(self._dataset(X, Y), config), config).fit(self._callback())
        )
        self._data_key = None  # fit's trainer holds its training split, not (X, Y) as given
        if self.verbose:  # the callback does not run on the epoch that stops
            trainer = self._trainer
            print(
                f"Stopped after {trainer.epoch} epochs ({trainer.stop_reason}), "
                f"train MSE = {trainer.history['train_mse'][-1]:.8g}"
            )
        self._store(y_1d)
        if self._trainer.batch_note:  # fell back to full batch: say so
            warnings.warn(
                f"GDRegressor: batch_size={self.batch_size} is at least the "
                f"{self._trainer.stats.q} training rows: each epoch is one full-batch step.",
                UserWarning,
                stacklevel=3,
            )
        if not self.converged_:
            metrics = self._trainer.metrics()
            warnings.warn(
                f"GDRegressor: {advice(metrics, self._trainer, ESTIMATOR_NAMES)}",
                ConvergenceWarning,
                stacklevel=3,  # fit, scikit-learn's _fit_context, the caller's line
            )
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """Run one more epoch on (X, y), continuing from the current weights.

        The first call (on an unfitted estimator) sets the trainer up: the parameters
        are read and the feature standardisation is fitted on that first batch. Later
        calls keep the trainer, its optimizer state and its epoch count; a batch other
        than the last one is standardised with the same scaler. A new ``device``
        (``set_params``) takes the state over onto that device. Early stopping is a
        ``fit``-only option: each call trains on every row given.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
        y : array-like or torch.Tensor of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : GDRegressor
        """
        first = not hasattr(self, "_trainer")
        X, Y, y_1d = self._validate_X_y(X, y, reset=first)
        key = _fingerprint(X, Y)
        if first:
            config = self._config(incremental=True)
            self._trainer = self._run(lambda: Trainer(prepare(self._dataset(X, Y), config), config))
        else:
            old = self._trainer
            n_targets = (old.state if isinstance(old, _Carried) else old).W.shape[1]
            if Y.shape[1] != n_targets:
                raise ValueError(
                    f"y has {Y.shape[1]} targets, but GDRegressor was trained on "
                    f"{n_targets}; give partial_fit the same targets each call."
                )
            config = old.config
            if key != self._data_key or config.early_stopping or config.device != self._device_name:
                self._trainer = self._run(lambda: self._continue_on(X, Y))
        self._data_key = key
        self._run(lambda: self._trainer.fit(self._callback(), self._trainer.epoch + 1))
        return self._store(y_1d)

    def predict(self, X):
        """Predictions ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets), float64
        """
        check_is_fitted(self)
        X = validate_data(self, _to_numpy(X), reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_.T + self.intercept_

    # --- helpers ---------------------------------------------------------------------
    def _validate_X_y(self, X, y, reset: bool):
        """(X (q, n) float64, Y (q, p) float64, whether y was 1-D)."""
        X, y = validate_data(
            self,
            _to_numpy(X),
            _to_numpy(y),
            reset=reset,
            multi_output=True,
            y_numeric=True,
            dtype=[np.float64, np.float32],
        )
        y_1d = y.ndim == 1
        # Fresh, writable float64 copies: prepare() wraps them with torch.from_numpy,
        # which warns on read-only arrays (the memmaps joblib hands to n_jobs > 1).
        X = np.array(X, dtype=np.float64, order="C")
        Y = np.array(y, dtype=np.float64).reshape(len(y), -1)
        return X, Y, y_1d

    def _dataset(self, X: np.ndarray, Y: np.ndarray) -> Dataset:
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{j}" for j in range(X.shape[1])]
        return Dataset(
            X=X,
            Y=Y,
            feature_names=tuple(str(name) for name in names),
            target_names=tuple(f"y{j}" for j in range(Y.shape[1])),
            name="GDRegressor",
        )

    def _config(self, incremental: bool = False) -> TrainConfig:
        """The parameters as one ``TrainConfig``; no test split (users hold one out)."""
        self._check_device(going_on=False)
        if isinstance(self.random_state, Integral):
            seed = int(self.random_state)
        else:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        early_stopping = self.early_stopping and not incremental
        learning_rate = self.learning_rate
        config = TrainConfig(
            max_epochs=self.max_epochs,
            learning_rate=learning_rate if learning_rate == "auto" else float(learning_rate),
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            momentum=float(self.momentum),
            tol=None if self.tol is None else float(self.tol),
            n_iter_no_change=self.n_iter_no_change,
            early_stopping=early_stopping,
            val_fraction=float(self.validation_fraction) if early_stopping else 0.0,
            test_fraction=0.0,
            shuffle=bool(self.shuffle),
            seed=seed,
            standardize=bool(self.standardize),
            precondition="none" if incremental else self.precondition,
            device=self._device_name,
            dtype=self.dtype,
        )
        for ignored in ignored_settings(config):  # a parameter that would do nothing
            raise ValueError(f"GDRegressor: {ignored.message(_spell)}")
        return config

    @property
    def _device_name(self) -> str:
        """``device`` as the training configuration names it (a torch.device too)."""
        return str(self.device)

    def _check_device(self, going_on: bool) -> None:
        """Refuse a ``device`` this machine lacks, in the estimator's own words."""
        try:
            resolve_device(self._device_name, ask=lambda value: f"device={value!r}")
        except UserError as error:
            how = " (set_params(device='cpu') goes on from the fitted state on the CPU)"
            how = how if going_on else ""
            raise ValueError(f"GDRegressor: {str(error).rstrip('.')}{how}.") from None

    def _continue_on(self, X: np.ndarray, Y: np.ndarray) -> Trainer:
        """A trainer on a new batch, in the old one's units, carrying its whole state.

        The batch is standardised with the scaler fitted at set-up, so that the weights
        keep their meaning; ``load_state`` carries weights, optimizer state (its rate
        included), epoch count and history over, onto the device ``device`` names now:
        an estimator fitted on a GPU and unpickled where there is none goes on with
        ``set_params(device="cpu")``.
        """
        self._check_device(going_on=True)
        old = self._trainer
        carried = old if isinstance(old, _Carried) else _Carried.of(old)
        x_scaler, state = carried.x_scaler, carried.state
        config = carried.config.replace(
            early_stopping=False, val_fraction=0.0, device=self._device_name
        )
        if state.whitening is None:  # the state is of plain steps: stay plain
            config = config.replace(precondition="none")
        X_train_units = x_scaler.transform(torch.from_numpy(X)).numpy()
        # Already standardised: prepare must not fit a scaler of its own.
        prepared = prepare(self._dataset(X_train_units, Y), config.replace(standardize=False))
        prepared.x_scaler = x_scaler  # the scaler that was in fact applied
        # A whitened fit goes on in its own coordinates: V and the optimizer's state mean
        # something only there (training/precondition.py).
        whitening = None
        if state.whitening is not None:
            whitening = Whitening.restored(state.whitening, prepared.dtype, prepared.device)
        trainer = Trainer(prepared, config, whitening=whitening)
        trainer.load_state(state)
        return trainer

    def __getstate__(self):
        """What pickle keeps: the parameters, the fitted attributes and, for
        ``partial_fit``, the trainer's state on the CPU (``_Carried``), not the trainer
        itself, which holds the training rows on the fit's device. A model fitted on a
        GPU unpickles and predicts on a machine without one."""
        state = super().__getstate__()
        if isinstance(state.get("_trainer"), Trainer):
            state = state | {"_trainer": _Carried.of(state["_trainer"]), "_data_key": None}
        return state

    def _callback(self):
        if not self.verbose:
            return None

        def report(trainer: Trainer) -> bool:
            print(f"Epoch {trainer.epoch}, train MSE = {trainer.history['train_mse'][-1]:.8g}")
            return False

        return report

    def _run(self, step):
        """Run ``step()``, turning the core's errors into the ValueError scikit-learn expects."""
        try:
            return step()
        except DivergedError as error:
            raise ValueError(
                f"GDRegressor: {error} (--lr is the learning_rate parameter here.)"
            ) from None
        except UserError as error:
            raise ValueError(f"GDRegressor: {error}") from None

    def _store(self, y_1d: bool) -> GDRegressor:
        """Fitted attributes from the trainer, in the data's own units."""
        trainer, data = self._trainer, self._trainer.data
        W, b = trainer.weights
        model = LinearModel(
            W=W,
            b=b,
            x_scaler=data.x_scaler,
            y_scaler=data.y_scaler,
            feature_names=data.feature_names,
            target_names=data.target_names,
        )
        W_raw, b_raw = model.raw_coefficients()  # (n, p), (p,)
        self.converged_ = convergence.converged(trainer.current_gap())
        self.coef_ = W_raw.T[0] if y_1d else W_raw.T
        self.intercept_ = float(b_raw[0]) if y_1d else b_raw
        self.n_iter_ = trainer.epoch
        self.loss_curve_ = list(trainer.history["train_mse"])
        self.device_ = device_name(data.device)
        return self
