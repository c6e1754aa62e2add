"""The training half of the ``torch_mlp`` estimators (:mod:`mlserve.training.torch_mlp`).

:class:`TorchMLPBase` holds the hyper-parameters and their constraints (checked by
mlserve's catalogue at submit time), ``fit`` (seeded validation split, early stopping on
the validation loss with ``patience``, best weights restored, learning-rate schedule,
per-epoch history and progress) and ``partial_fit``. The torch calls themselves are in
:mod:`mlserve.training.torch_loop`; the numpy state and prediction in
:mod:`mlserve.training.torch_mlp`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from itertools import pairwise
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import validate_data

from mlserve.training import torch_loop as tl

Progress = Callable[[float, str], None]
ACTIVATIONS = tuple(tl.ACTIVATION_MODULES)
MAX_LAYERS, MAX_WIDTH = 8, 4096  # a client's network cannot hog a worker's memory
MAX_HIDDEN_WEIGHTS = 2**24
MAX_EPOCHS, MAX_PARTIAL_FIT_EPOCHS = 10_000, 100
PARTIAL_SEED_STRIDE = 1_000_003  # partial_fit call k seeds with seed + k * stride


class TorchMLPBase(BaseEstimator, metaclass=ABCMeta):
    """Hyper-parameters, ``fit`` and ``partial_fit`` of the ``torch_mlp`` estimators (the
    parameters are documented on :class:`mlserve.training.torch_mlp.TorchMLPRegressor`)."""

    _parameter_constraints: dict[str, list[Any]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, MAX_WIDTH, closed="both")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0.0, 1.0, closed="left")],
        "batch_norm": ["boolean"],
        "optimizer": [StrOptions({"adamw", "adam", "sgd"})],
        "learning_rate": [Interval(Real, 0.0, None, closed="neither")],
        "lr_schedule": [StrOptions({"plateau", "cosine", "constant"})],
        "weight_decay": [Interval(Real, 0.0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, MAX_EPOCHS, closed="both")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0.0, 0.5, closed="right")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "partial_fit_epochs": [Interval(Integral, 1, MAX_PARTIAL_FIT_EPOCHS, closed="both")],
        "random_state": ["random_state"],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (256, 128),
        activation: str = "relu",
        dropout: float = 0.1,
        batch_norm: bool = True,
        optimizer: str = "adamw",
        learning_rate: float = 1e-3,
        lr_schedule: str = "plateau",
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        max_epochs: int = 200,
        patience: int | None = 20,
        validation_fraction: float = 0.1,
        tol: float = 1e-4,
        partial_fit_epochs: int = 1,
        random_state: Any = None,
        device: str = "cpu",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.tol = tol
        self.partial_fit_epochs = partial_fit_epochs
        self.random_state = random_state
        self.device = device

    def _validate_params(self) -> None:
        """scikit-learn's constraints, then ``hidden_layer_sizes``: 1 to 8 widths in [1, 4096]
        (an integer is one layer) with at most 2**24 weights between hidden layers (64 MiB
        in float32, four times that with the optimiser's state), as mlserve's catalogue
        checks at submit time.

        Raises
        ------
        InvalidParameterError
            Naming the parameter in quotes, as scikit-learn does.
        """
        super()._validate_params()
        sizes = self._hidden()
        if not 1 <= len(sizes) <= MAX_LAYERS or not all(1 <= h <= MAX_WIDTH for h in sizes):
            raise InvalidParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be 1 to "
                f"{MAX_LAYERS} integers in [1, {MAX_WIDTH}]. Got {self.hidden_layer_sizes!r}."
            )
        weights = sum(a * b for a, b in pairwise(sizes))
        if weights > MAX_HIDDEN_WEIGHTS:
            raise InvalidParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} makes {weights:,} "
                f"weights between hidden layers, more than {MAX_HIDDEN_WEIGHTS:,}."
            )

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral) and not isinstance(sizes, bool):
            return (int(sizes),)
        values: list[Any] = list(sizes) if isinstance(sizes, list | tuple | np.ndarray) else []
        ok = bool(values) and all(
            isinstance(h, Integral) and not isinstance(h, bool) for h in values
        )
        return tuple(int(h) for h in values) if ok else (0,)

    # -- subclass hooks: targets, loss, numpy state ---------------------------------------
    @abstractmethod
    def _encode(self, y: np.ndarray, first: bool) -> np.ndarray:
        """The target as the network's training target (fitting the label encoding when
        ``first``)."""

    @abstractmethod
    def _criterion(self) -> Any:
        """The torch loss module."""

    def _stratify(self, target: np.ndarray) -> np.ndarray | None:
        return None

    @abstractmethod
    def _export(self) -> None:
        """Copy the network's weights into numpy attributes (what is persisted)."""

    @abstractmethod
    def _ensure_network(self) -> None:
        """Build the torch network from the numpy attributes when it is missing."""

    # -- training -------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, progress: Progress | None = None) -> TorchMLPBase:
        """Train from new weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numbers (mlserve's preprocessing output); trained on as float32.
        y : array-like of shape (n_samples,)
            Targets (regression, ideally standardised) or class labels.
        progress : callable(fraction, stage), optional
            Called after each epoch with ``epoch / max_epochs`` and ``"epoch 7/50"``.

        Raises
        ------
        ValueError
            Bad parameters, too few rows, or a loss that is no longer finite (lower
            ``learning_rate``).
        ImportError
            PyTorch is not installed.
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32, reset=True)
        target = self._encode(np.asarray(y), first=True)
        torch = tl.import_torch()
        self._seed, self._partial_calls = _seed(self.random_state), 0
        rows = self._split(len(X), target)
        self.device_: str | None = tl.resolve_device(self.device)
        self.trained_on_ = self.device_
        self.torch_version_ = str(torch.__version__)
        self.history_: list[dict[str, Any]] = []
        with tl.one_thread() as threads, torch.random.fork_rng(devices=self._cuda()):
            self.n_threads_ = threads
            torch.manual_seed(self._seed)  # initial weights and dropout masks
            self._new_network(X.shape[1])
            self._train(X, target, rows, progress)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> TorchMLPBase:
        """``partial_fit_epochs`` passes over (X, y) from the current weights and optimiser
        state (the learning rate training ended with); no validation split, no schedule.

        Deterministic for (``random_state``, number of earlier ``partial_fit`` calls). A
        model loaded on a machine without the GPU it trained on continues on the CPU.
        """
        first = not hasattr(self, "weights_")
        if first:
            self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32, reset=first)
        if first and classes is not None:
            self._encode(np.asarray(classes), first=True)
        target = self._encode(np.asarray(y), first=first and classes is None)
        torch = tl.import_torch()
        if first:
            self._seed, self._partial_calls, self.history_ = _seed(self.random_state), 0, []
            self.trained_on_ = tl.resolve_device(self.device)
            self.torch_version_ = str(torch.__version__)
        if getattr(self, "device_", None) is None:
            self.device_ = tl.resolve_device("auto" if self.device == "cuda" else self.device)
        self._partial_calls += 1
        seed = self._seed + PARTIAL_SEED_STRIDE * self._partial_calls
        with tl.one_thread() as threads, torch.random.fork_rng(devices=self._cuda()):
            self.n_threads_ = threads
            torch.manual_seed(seed)
            if first:
                self._new_network(X.shape[1])
            self._ensure_network()
            # rebuilding drew initial weights: the dropout masks must not depend on it
            torch.manual_seed(seed)
            generator, data = torch.Generator().manual_seed(seed), self._tensors(X, target)
            for _ in range(self.partial_fit_epochs):
                loss = self._epoch(data, generator, online=not first)
        self._record(len(self.history_) + 1, loss, None, online=True)
        self._export()
        return self

    def _split(self, n_rows: int, target: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and validation row positions (no validation without ``patience``)."""
        everything = np.arange(n_rows)
        if self.patience is None:
            return everything, None
        if n_rows < 3:
            raise ValueError(f"{n_rows} rows are too few for a validation split; set patience=None")
        stratify = self._stratify(target)
        parts = train_test_split(everything, test_size=self.validation_fraction,
                                 random_state=self._seed, stratify=stratify)  # fmt: skip
        return parts[0], parts[1]

    def _cuda(self) -> list[int]:
        return [0] if str(self.device_).startswith("cuda") else []

    def _new_network(self, n_in: int) -> None:
        self.module_ = tl.build_module(
            n_in,
            self.n_outputs_,
            self._hidden(),
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
        ).to(self.device_)
        self.optimizer_ = tl.make_optimizer(
            self.optimizer, self.module_.parameters(), self.learning_rate, self.weight_decay
        )

    def _tensors(self, X: np.ndarray, target: np.ndarray) -> tuple[Any, Any]:
        torch = tl.import_torch()
        return torch.as_tensor(X, device=self.device_), torch.as_tensor(target, device=self.device_)

    def _epoch(self, data: tuple[Any, Any], generator: Any, *, online: bool = False) -> float:
        loss = tl.run_epoch(
            self.module_,
            self.optimizer_,
            self._criterion(),
            data,
            batch_size=self.batch_size,
            generator=generator,
            skip_single=self.batch_norm and not online,
            frozen_statistics=online,
        )
        if not np.isfinite(loss):
            raise ValueError(
                f"the training loss became {loss} at epoch {len(self.history_) + 1}: "
                "lower learning_rate"
            )
        return loss

    def _train(
        self, X: np.ndarray, target: np.ndarray, rows: Any, progress: Progress | None
    ) -> None:
        torch = tl.import_torch()
        train_rows, valid_rows = rows
        scheduler = tl.make_scheduler(
            self.lr_schedule, self.optimizer_, patience=self.patience, max_epochs=self.max_epochs
        )
        generator = torch.Generator().manual_seed(self._seed)  # on the CPU for every device
        train = self._tensors(X[train_rows], target[train_rows])
        valid = None if valid_rows is None else self._tensors(X[valid_rows], target[valid_rows])
        best, best_state, waited = np.inf, None, 0
        self.best_epoch_: int | None = None
        for epoch in range(1, self.max_epochs + 1):
            train_loss = self._epoch(train, generator)
            valid_loss = (
                None if valid is None else tl.eval_loss(self.module_, self._criterion(), valid)
            )
            watched = train_loss if valid_loss is None else valid_loss
            self._record(epoch, train_loss, valid_loss)
            tl.step_scheduler(scheduler, watched)
            if watched < best - self.tol * (abs(best) if np.isfinite(best) else 0.0):
                best, waited, self.best_epoch_ = watched, 0, epoch
                if valid is not None:
                    best_state = {
                        k: v.detach().clone() for k, v in self.module_.state_dict().items()
                    }
            else:
                waited += 1
            if progress is not None:
                progress(epoch / self.max_epochs, f"epoch {epoch}/{self.max_epochs}")
            if self.patience is not None and waited >= self.patience:
                break
        if best_state is not None:
            self.module_.load_state_dict(best_state)
        self.n_iter_, self.best_loss_ = len(self.history_), float(best)
        self._export()

    def _record(
        self, epoch: int, train_loss: float, valid_loss: float | None, online: bool = False
    ) -> None:
        lr = float(self.optimizer_.param_groups[0]["lr"])
        entry = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss, "lr": lr}
        self.history_.append({**entry, "online": online})


def _seed(random_state: Any) -> int:
    return int(check_random_state(random_state).randint(0, 2**31 - 1))
