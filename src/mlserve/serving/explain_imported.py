"""SHAP explanations of an imported version (ONNX or skops file), through its own runtime.

An imported model is a black box to mlserve: a graph or a pipeline of any shape. It is
explained by the model-agnostic sampling explainer of :mod:`mlserve.training.explain`
(``shap.PermutationExplainer``, exactly additive) over the version's tabular features,
calling the very runtime that serves its predictions (``ServableVersion.predict``), with
the rows registered as its ``sample`` as the background (stored with the version at
import, :func:`background_records`). Values of any type are masked through integer
codes: each feature's values in the background and the explained rows are numbered, the
masker mixes numbers, and the numbers are turned back into the values before the model
sees them. Output space: ``raw`` for regression, ``probability`` of the explained class
for classification (a classifier without probabilities cannot be explained).

May import the serving runtime's shapes and :mod:`mlserve.training.explain`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlserve.context import Columns, ServableVersion
from mlserve.errors import ValidationFailed
from mlserve.store.documents import Signature
from mlserve.training.explain import (
    BACKGROUND_ROWS,
    PERMUTATION_BACKGROUND_ROWS,
    Explanation,
    class_labels,
    permutation_values,
    target_classes,
    warm_up,
)
from mlserve.training.shap_jit import load_shap


def background_records(signature: Signature, sample: Any) -> list[dict[str, Any]] | None:
    """The registration ``sample`` kept as an imported version's background: at most
    :data:`~mlserve.training.explain.BACKGROUND_ROWS` rows of ``{feature: value}``
    (already validated by the import's sample run), or ``None`` for a tensor signature
    or no sample."""
    names = {f["name"] for f in signature.get("inputs", [])}
    if not names or not isinstance(sample, list) or not sample:
        return None
    if not all(isinstance(r, dict) and set(r) <= names for r in sample):
        return None
    return [dict(r) for r in sample[:BACKGROUND_ROWS]]


class ImportedExplainer:
    """The sampling explainer of one imported version (see the module docstring).

    Parameters
    ----------
    model : ServableVersion
        The loaded version (its ``predict`` takes validated columns).
    background : DataFrame of shape (n_background, n_features)
        Validated registration rows (:meth:`InstanceValidator.frame`).

    Raises
    ------
    ValidationFailed
        A classifier that gives no probabilities.
    """

    method = "permutation"

    def __init__(self, model: ServableVersion, background: pd.DataFrame) -> None:
        self._model = model
        self._background = background
        self._classes = model.classes
        if self._classes is not None and self._probabilities(background.head(1)) is None:
            raise ValidationFailed(
                "this classifier gives no class probabilities, which its explanation needs",
                {"field": "version"},
            )
        shap = load_shap()
        codes = np.zeros((1, background.shape[1]))
        warm_up(shap, codes, lambda rows: np.zeros(len(rows)), shap.maskers.Independent(codes))

    def _probabilities(self, frame: pd.DataFrame) -> np.ndarray | None:
        return self._model.predict(_columns(frame), len(frame))[1]

    def explain(self, X: pd.DataFrame, budget_s: float = float("inf")) -> Explanation:
        """Explain each row of ``X`` (n_rows, n_features), validated model input.

        Raises
        ------
        BudgetExceeded
            Past ``budget_s`` seconds.
        """
        features = list(X.columns)
        background = self._background[features].head(PERMUTATION_BACKGROUND_ROWS)
        codes, values = _encode(pd.concat([background, X], ignore_index=True))
        coded = _Coded(self._model, features, values)
        rows = codes[len(background) :]
        shap = load_shap()
        masker = shap.maskers.Independent(codes[: len(background)], max_samples=len(background))
        target = target_classes(coded, rows, self._classes)
        contributions, base, output, space = permutation_values(
            shap, coded, rows, masker=masker, target=target, budget_s=budget_s
        )
        return Explanation.of(
            features,
            contributions,
            (base, output, space),
            method=self.method,
            explained=class_labels(target, self._classes),
            predictions=coded.predict(rows),
        )


class _Coded:
    """The model seen through integer codes: ``predict`` and ``predict_proba`` of rows of
    codes (n, n_features), each decoded into the feature's value first."""

    def __init__(self, model: ServableVersion, features: list[str], values: list[np.ndarray]):
        self._model = model
        self._features = features
        self._values = values

    def _outputs(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        index = np.asarray(codes, dtype=np.int64)
        columns: Columns = {
            name: values[index[:, j]]
            for j, (name, values) in enumerate(zip(self._features, self._values, strict=True))
        }
        return self._model.predict(columns, len(index))

    def predict(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self._outputs(codes)[0])

    def predict_proba(self, codes: np.ndarray) -> np.ndarray:
        probabilities = self._outputs(codes)[1]
        assert probabilities is not None  # checked when the explainer was built
        return np.asarray(probabilities, np.float64)


def _encode(frame: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """Codes (n_rows, n_features) float64, and per feature the value of each code (an
    array of the column's own dtype, so that decoding gives validated columns back)."""
    codes = np.empty(frame.shape, dtype=np.float64)
    values: list[np.ndarray] = []
    for j, name in enumerate(frame.columns):
        column = frame[name].to_numpy()
        seen: dict[Any, int] = {}
        firsts: list[int] = []
        for i, value in enumerate(column.tolist()):
            key = _NAN if isinstance(value, float) and value != value else value
            code = seen.setdefault(key, len(firsts))
            if code == len(firsts):
                firsts.append(i)
            codes[i, j] = code
        values.append(column[np.asarray(firsts, dtype=np.int64)])
    return codes, values


_NAN = object()  # the one key of every NaN (NaN != NaN)


def _columns(frame: pd.DataFrame) -> Columns:
    return {name: frame[name].to_numpy() for name in frame.columns}
