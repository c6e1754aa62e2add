"""PyTorch multilayer perceptrons as scikit-learn estimators: the ``torch_mlp`` entries.

:class:`TorchMLPRegressor` and :class:`TorchMLPClassifier` train an ``nn.Sequential`` of
``[Linear -> BatchNorm1d -> activation -> Dropout] * len(hidden_layer_sizes) -> Linear``
in float32 (:mod:`mlserve.training.torch_base`, :mod:`mlserve.training.torch_loop`).

Their fitted state is numpy and plain Python only (``__getstate__``): the weights, the
optimiser's moments, the history. So a version is an ordinary skops artifact with these
two classes on the loader's allow-list, and prediction is the float64 numpy forward pass
of :meth:`TorchMLPRegressor.layers` (BatchNorm folded, dropout the identity): serving
never imports torch, and the float64 ONNX graph (:mod:`mlserve.serving.onnx_torch`)
computes exactly this. Torch is imported by ``fit`` and ``partial_fit`` only.

Deterministic for a ``random_state`` on one device type (torch on one CPU thread,
:func:`~mlserve.training.torch_loop.one_thread`). Why not skorch, and the measurements
behind the defaults: docs/torch.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from mlserve.store.documents import TrainingCurve, TrainingRecord
from mlserve.training import torch_loop as tl
from mlserve.training.torch_base import TorchMLPBase

__all__ = ["TorchMLPClassifier", "TorchMLPRegressor"]
_NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "logistic": expit,
    "silu": lambda z: z * expit(z),
}
_TRANSIENT = ("module_", "optimizer_", "_layers")  # rebuilt from numpy state when needed


class _NumpyState(TorchMLPBase):
    """The fitted network as numpy: persistence (skops, no torch objects) and prediction."""

    _layers: list[tuple[str, Any, Any]] | None = None  # layers() cache, never stored

    def _export(self) -> None:
        self.weights_ = tl.state_to_numpy(self.module_)
        self._layers = None

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in _TRANSIENT}
        if self.__dict__.get("optimizer_") is not None:
            state["_optimizer_state"] = tl.optimizer_to_numpy(self.optimizer_)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.module_ = self.optimizer_ = self._layers = None
        self.device_ = None  # resolved again by partial_fit: a GPU-trained model loads on a CPU

    def layers(self) -> list[tuple[str, Any, Any]]:
        """The fitted network as float64 steps: ``("linear", W, b)`` with W of shape
        (n_in, n_out), or ``("activation", name, None)``.

        Eval-mode BatchNorm ``(z - mean) / sqrt(var + eps) * gamma + beta`` is folded into
        the Linear before it; Dropout is the identity at prediction time.
        """
        check_is_fitted(self, "weights_")
        if self._layers is None:
            self._layers = _fold(self.weights_, len(self._hidden()), self)
        return list(self._layers)

    def _forward(self, X: Any) -> np.ndarray:
        """Raw outputs (n_samples, n_outputs) in float64, with numpy only."""
        z = validate_data(self, X, dtype=np.float64, reset=False)
        for kind, first, second in self.layers():
            z = z @ first + second if kind == "linear" else _NUMPY_ACTIVATIONS[first](z)
        return np.asarray(z)

    def training_record(self) -> TrainingRecord:
        """What training did, for the version's record (``evaluation["training"]``): device,
        torch version, threads, loss, epochs run, best epoch and the per-epoch curve."""
        check_is_fitted(self, "weights_")
        history = self.history_
        curve: TrainingCurve = {
            "epoch": [h["epoch"] for h in history],
            "train_loss": [h["train_loss"] for h in history],
            "valid_loss": [h["valid_loss"] for h in history],
            "lr": [h["lr"] for h in history],
            "online": [h["online"] for h in history],
        }
        return {
            "device": self.trained_on_,
            "torch_version": self.torch_version_,
            "threads": int(getattr(self, "n_threads_", 1)),
            "loss": "mse" if isinstance(self, RegressorMixin) else "cross_entropy",
            "epochs": sum(1 for h in history if not h["online"]),
            "best_epoch": getattr(self, "best_epoch_", None),
            "online_updates": sum(1 for h in history if h["online"]),
            "curve": curve,
        }

    def _ensure_network(self) -> None:
        """Rebuild ``module_`` and ``optimizer_`` from the numpy state (after loading)."""
        if getattr(self, "module_", None) is not None:
            return
        torch = tl.import_torch()
        self._new_network(self.n_features_in_)
        weights = {k: torch.from_numpy(np.array(v)) for k, v in self.weights_.items()}
        self.module_.load_state_dict(weights)
        if getattr(self, "_optimizer_state", None) is not None:
            tl.optimizer_from_numpy(self.optimizer_, self._optimizer_state)


def _fold(
    weights: dict[str, np.ndarray], n_hidden: int, model: TorchMLPBase
) -> list[tuple[str, Any, Any]]:
    """:meth:`_NumpyState.layers` from the ``state_dict`` of a
    :func:`~mlserve.training.torch_loop.build_module` network."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    steps: list[tuple[str, Any, Any]] = []
    index = 0
    for layer in range(n_hidden + 1):
        W, b = w[f"{index}.weight"].T, w[f"{index}.bias"]
        index += 1
        if layer < n_hidden and model.batch_norm:
            scale = w[f"{index}.weight"] / np.sqrt(w[f"{index}.running_var"] + tl.BN_EPS)
            W, b = W * scale, (b - w[f"{index}.running_mean"]) * scale + w[f"{index}.bias"]
            index += 1
        steps.append(("linear", W, b))
        if layer < n_hidden:
            steps.append(("activation", model.activation, None))
            index += 2 if model.dropout > 0 else 1
    return steps


class TorchMLPRegressor(RegressorMixin, _NumpyState):
    """A PyTorch MLP regressor trained on mean squared error (mlserve standardises the target
    around it, ``TransformedTargetRegressor``). Defaults and measurements: docs/torch.md.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int or int
        Width of each hidden layer (1 to 8 layers of 1 to 4096 units).
    activation : {"relu", "tanh", "logistic", "silu"}
    dropout : float
        Drop probability after each hidden activation, in [0, 1) (Srivastava et al. 2014).
    batch_norm : bool
        ``BatchNorm1d`` after each hidden ``Linear`` (Ioffe and Szegedy 2015).
    optimizer : {"adamw", "adam", "sgd"}
        AdamW (Loshchilov and Hutter 2019), Adam with L2 (Kingma and Ba 2015), or SGD with
        Nesterov momentum 0.9.
    learning_rate, weight_decay : float
    lr_schedule : {"plateau", "cosine", "constant"}
        ``ReduceLROnPlateau`` (factor 0.5, patience ``patience // 4``) on the watched loss,
        ``CosineAnnealingLR`` over ``max_epochs``, or none.
    batch_size, max_epochs : int
    patience : int or None
        Early stopping (Prechelt 1998): stop after this many epochs without a validation
        loss better by ``tol`` (relative) and keep the best epoch's weights; ``None``: no
        validation split, all ``max_epochs`` run.
    validation_fraction : float
        Share of the rows held out for early stopping, in (0, 0.5].
    tol : float
    partial_fit_epochs : int
        Passes over the rows of each ``partial_fit`` call.
    random_state : int, RandomState or None
        Seeds the validation split, the initial weights, dropout and the shuffling.
    device : {"cpu", "auto", "cuda"}
        Where to train; mlserve sets it from ``MLSERVE_TORCH_DEVICE``.

    Attributes
    ----------
    weights_ : dict of str to ndarray
        The network's ``state_dict`` as float32 arrays (BatchNorm running statistics too).
    history_ : list of dict
        Per pass: ``epoch``, ``train_loss``, ``valid_loss`` (None without a split or for an
        online pass), ``lr``, ``online``.
    best_epoch_ : int or None
        The epoch whose weights were kept.
    n_iter_ : int
        Epochs the fit ran.
    device_, trained_on_, torch_version_, n_threads_ : str, str, str, int
        Device in use; the device, torch version and CPU threads of the fit.
    """

    def _encode(self, y: np.ndarray, first: bool) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if first:
            self.n_outputs_, self._one_dimensional = (1 if y.ndim == 1 else y.shape[1]), y.ndim == 1
        return y.reshape(len(y), -1)

    def _criterion(self) -> Any:
        return tl.import_torch().nn.MSELoss()

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of shape (n_samples,) (or (n_samples, n_outputs)), float64."""
        out = self._forward(X)
        return out.ravel() if self._one_dimensional else out


class TorchMLPClassifier(ClassifierMixin, _NumpyState):
    """A PyTorch MLP classifier trained on softmax cross-entropy over one output per class
    (two for a binary target, matching the probability matrix).

    Parameters and attributes: those of :class:`TorchMLPRegressor`, plus ``classes_``
    (ndarray of shape (n_classes,), sorted labels in probability-column order).
    """

    def _encode(self, y: np.ndarray, first: bool) -> np.ndarray:
        if first:
            check_classification_targets(y)
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError("the target has 1 class; a classifier needs at least 2")
            self.n_outputs_ = len(self.classes_)
        codes = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
        if np.any(self.classes_[codes] != y):
            raise ValueError("y holds labels outside classes_")
        return codes.astype(np.int64)

    def _stratify(self, target: np.ndarray) -> np.ndarray | None:
        n_valid = int(np.ceil(self.validation_fraction * len(target)))
        k = len(self.classes_)
        fits = np.bincount(target).min() >= 2 and k <= n_valid <= len(target) - k
        return target if fits else None

    def _criterion(self) -> Any:
        return tl.import_torch().nn.CrossEntropyLoss()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes), float64 (softmax)."""
        z = self._forward(X)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(z / z.sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """Labels ``classes_[argmax(predict_proba)]`` of shape (n_samples,)."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])
