"""SHAP explanations of a fitted mlserve pipeline, per original input feature.

The estimator is explained on the pipeline's transformed matrix (after imputation,
scaling and one-hot encoding), and the contributions of the columns an input feature
became (its one-hot columns) are summed back to that feature, so each row gets one
contribution per input feature, adding up to the model's output minus the base value
(SHAP's local accuracy; S. M. Lundberg and S.-I. Lee, "A Unified Approach to
Interpreting Model Predictions", NeurIPS 2017). The explainer depends on the estimator
(the ``shap`` library, imported when first used):

- linear models (``coef_``, scikit-learn's ``linear_model``): ``shap.LinearExplainer``,
  exact under feature independence, against a background sample's mean;
- trees, forests and gradient boosting: ``shap.TreeExplainer`` (TreeSHAP, exact, path-
  dependent: no background needed; Lundberg et al., Nature Machine Intelligence 2020);
  histogram gradient boosting with categorical splits through
  :mod:`mlserve.training.hgb_trees` (its trees with those splits expanded, the background
  sample giving each category's share of the copied branches);
- anything else: ``shap.PermutationExplainer`` with an independent masker over a
  background sample (exact local accuracy, sampled attribution).

Output spaces: regression ``raw`` (the target's unit); classification ``log-odds``
(logistic and linear classifiers, histogram gradient boosting: the decision function
of the explained class), ``probability`` (forests, single trees and the permutation
explainer: ``predict_proba`` of the explained class). The explained class is the
positive class (``classes[1]``) of a binary model, the predicted class of a multiclass
model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlserve.errors import ValidationFailed
from mlserve.training import hgb_trees
from mlserve.training.shap_jit import load_shap

log = logging.getLogger(__name__)
TREES = (
    DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier, RandomForestRegressor,
    ExtraTreesClassifier, ExtraTreesRegressor,
)  # fmt: skip
BOOSTING = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
BACKGROUND_ROWS = 100
PERMUTATION_BACKGROUND_ROWS = 50
PERMUTATIONS = 2  # antithetic permutations per row (each is exactly additive)


class BudgetExceeded(ValidationFailed):
    """An explanation would take longer than the time budget (422)."""


@dataclass(kw_only=True)
class Explanation:
    """Contributions of each input feature to each row's model output.

    Attributes
    ----------
    features : list of str
        Input features, signature order.
    contributions : ndarray of shape (n_rows, n_features)
    base : ndarray of shape (n_rows,)
        The expected output (over the background, or the trees' training data).
    output : ndarray of shape (n_rows,)
        The model's output in ``output_space`` (computed by the model itself:
        ``base + contributions.sum(1)`` equals it within rounding).
    output_space : {"raw", "log-odds", "probability"}
    method : {"linear", "tree", "permutation"}
    explained : list or None
        The class each row's output is of (classification), else ``None``.
    predictions : ndarray of shape (n_rows,) or None
        The pipeline's predictions (values or labels), from the same transformed rows.
    """

    features: list[str]
    contributions: np.ndarray
    base: np.ndarray
    output: np.ndarray
    output_space: str
    method: str
    explained: list[Any] | None
    predictions: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        features: list[str],
        contributions: np.ndarray,
        outputs: tuple[np.ndarray, Any, str],
        **rest: Any,
    ) -> Explanation:
        """From ``(base, output, output_space)`` as the explainers return them; ``rest``:
        ``method``, ``explained``, ``predictions``."""
        base, output, space = outputs
        return cls(
            features=features,
            contributions=contributions,
            base=base,
            output=np.asarray(output, np.float64),
            output_space=space,
            **rest,
        )


def class_labels(target: np.ndarray | None, classes: list[Any] | None) -> list[Any] | None:
    """The explained class label of each row (``target``: indices into ``classes``)."""
    return None if target is None or classes is None else [classes[k] for k in target]


def method_of(pipeline: Pipeline) -> str:
    """``linear``, ``tree`` or ``permutation``: the explainer the estimator gets."""
    estimator = pipeline.named_steps["estimator"]
    if isinstance(estimator, TREES + BOOSTING):
        return "tree"
    if _linear_core(estimator) is not None:
        return "linear"
    return "permutation"


def _categorical_splits(estimator: Any) -> bool:
    """Whether ``estimator`` is histogram gradient boosting with categorical splits
    (explained through :mod:`mlserve.training.hgb_trees`, which needs a sample)."""
    categorical = getattr(estimator, "is_categorical_", None)
    return isinstance(estimator, BOOSTING) and categorical is not None and bool(np.any(categorical))


def needs_background(pipeline: Pipeline) -> bool:
    """Whether the explainer needs a background sample (all but plain TreeSHAP)."""
    estimator = pipeline.named_steps["estimator"]
    return method_of(pipeline) != "tree" or _categorical_splits(estimator)


class PipelineExplainer:
    """The SHAP explainer of one fitted pipeline, built once and reused (building a
    TreeSHAP explainer of a boosted model takes about a second; explaining a row, ms).

    Parameters
    ----------
    pipeline : Pipeline
        Fitted mlserve pipeline (``preprocess`` then ``estimator``).
    classes : list or None
        Class labels in ``predict_proba`` order (classifiers).
    background : DataFrame or None
        Training rows (model input columns) for the linear and permutation explainers.

    Raises
    ------
    ValidationFailed
        No background for an explainer that needs one.
    """

    def __init__(
        self, pipeline: Pipeline, *, classes: list[Any] | None, background: pd.DataFrame | None
    ) -> None:
        shap = load_shap()  # heavy (numba): imported on first explanation

        self._shap = shap
        self.method = method_of(pipeline)
        if needs_background(pipeline) and background is None:
            raise ValidationFailed(
                "no background sample for this version: it was trained before explanations "
                "and its dataset is gone",
                {"field": "version"},
            )
        self._preprocess = pipeline.named_steps["preprocess"]
        self._estimator = pipeline.named_steps["estimator"]
        self._classes = classes
        Bt = None if background is None else self._transform(background)
        # the estimator's input column of each column its trees read (None: the same)
        self._internal_columns = (
            hgb_trees.internal_columns(self._estimator)
            if _categorical_splits(self._estimator)
            else None
        )
        self._tree: Any = self._tree_explainer(Bt) if self.method == "tree" else None
        self._masker: Any = None
        if Bt is not None and self.method != "tree":
            if self.method == "permutation":
                Bt = Bt[:PERMUTATION_BACKGROUND_ROWS]
            self._masker = shap.maskers.Independent(Bt, max_samples=len(Bt))
            if self.method == "permutation":
                warm_up(shap, Bt[:1], lambda rows: np.zeros(len(rows)), self._masker)
        self._linear: dict[int, Any] = {}

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._preprocess.transform(X), dtype=np.float64)

    def _tree_explainer(self, Bt: np.ndarray | None) -> Any:
        """shap's TreeExplainer of the estimator (path-dependent TreeSHAP); for histogram
        gradient boosting with categorical splits, of its trees with those splits
        expanded (:mod:`mlserve.training.hgb_trees`), provided they compute the same
        raw output as the estimator on the background (else the sampling explainer)."""
        if self._internal_columns is None:
            return self._shap.TreeExplainer(self._estimator)
        assert Bt is not None  # needs_background
        estimator = self._estimator
        rows = hgb_trees.internal_rows(estimator, Bt)
        try:
            explainer = self._shap.TreeExplainer(
                hgb_trees.shap_model(estimator, rows),
                feature_perturbation="tree_path_dependent",
                model_output="raw",
            )
        except hgb_trees.TooLarge as exc:
            log.warning("sampling explainer for this version: %s", exc)
            self.method = "permutation"
            return None
        raw = estimator._raw_predict(Bt)
        ours = explainer.model.predict(rows).reshape(raw.shape)
        if not np.allclose(ours, raw, rtol=1e-9, atol=1e-9):
            log.warning("sampling explainer for this version: its expanded trees differ from it")
            self.method = "permutation"
            return None
        return explainer

    def explain(self, X: pd.DataFrame, budget_s: float = float("inf")) -> Explanation:
        """Explain each row of ``X`` (n_rows, n_features), validated model input.

        Raises
        ------
        BudgetExceeded
            The permutation explainer ran out of ``budget_s`` seconds.
        """
        Xt = self._transform(X)
        owners, features = _owners(self._preprocess, list(X.columns))
        target = target_classes(self._estimator, Xt, self._classes)
        if self.method == "tree":
            values, base, output, space = _tree(self._tree_values(Xt), self._estimator, Xt, target)
        elif self.method == "linear":
            values, base, output, space = self._linear_values(Xt, target)
        else:
            values, base, output, space = self._permutation_values(Xt, target, budget_s)
        summed = np.zeros((len(X), len(features)))
        np.add.at(summed.T, owners, values.T)  # one-hot columns back onto their feature
        return Explanation.of(
            features,
            summed,
            (base, output, space),
            method=self.method,
            explained=class_labels(target, self._classes),
            predictions=np.asarray(self._estimator.predict(Xt)),
        )

    def _tree_values(self, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP values, (n, p) or (n, p, K) in ``Xt``'s columns, and expected values."""
        estimator = self._estimator
        expected = np.atleast_1d(np.asarray(self._tree.expected_value, np.float64))
        if self._internal_columns is None:
            values = self._tree.shap_values(Xt, check_additivity=False)
            return np.asarray(values, np.float64), expected
        rows = hgb_trees.internal_rows(estimator, Xt)
        inner = np.asarray(self._tree.shap_values(rows, check_additivity=False), np.float64)
        values = np.empty_like(inner)
        values[:, self._internal_columns] = inner
        return values, expected

    def _permutation_values(self, Xt: np.ndarray, target: Any, budget_s: float) -> tuple:
        return permutation_values(
            self._shap, self._estimator, Xt, masker=self._masker, target=target, budget_s=budget_s
        )

    def _linear_values(self, Xt: np.ndarray, target: np.ndarray | None) -> tuple:
        estimator = self._estimator
        core = _linear_core(estimator)
        coef = np.atleast_2d(np.asarray(core.coef_, np.float64))
        intercept = np.atleast_1d(np.asarray(core.intercept_, np.float64))
        scale, shift = 1.0, 0.0
        if isinstance(estimator, TransformedTargetRegressor):  # y = scale * f(x) + shift
            scaler = estimator.transformer_
            assert isinstance(scaler, StandardScaler)
            scale, shift = float(scaler.scale_[0]), float(scaler.mean_[0])
        rows = np.zeros(len(Xt), dtype=int) if target is None or len(coef) == 1 else target
        values = np.zeros_like(Xt)
        base = np.zeros(len(Xt))
        for k in np.unique(rows).tolist():
            if k not in self._linear:
                model = (coef[k] * scale, intercept[k] * scale + shift)
                self._linear[k] = self._shap.LinearExplainer(model, self._masker)
            chosen = rows == k
            values[chosen] = self._linear[k].shap_values(Xt[chosen])
            base[chosen] = float(np.asarray(self._linear[k].expected_value))
        if target is None:
            return values, base, estimator.predict(Xt), "raw"
        margin = estimator.decision_function(Xt)
        return values, base, _pick(margin, target if margin.ndim == 2 else None), "log-odds"


def explain(
    pipeline: Pipeline,
    X: pd.DataFrame,
    *,
    classes: list[Any] | None,
    background: pd.DataFrame | None,
    budget_s: float = float("inf"),
) -> Explanation:
    """Explain each row of ``X`` with a new :class:`PipelineExplainer` (see there)."""
    explainer = PipelineExplainer(pipeline, classes=classes, background=background)
    return explainer.explain(X, budget_s)


def _owners(preprocess: Any, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    """For each transformed column, the position of the input feature it came from."""
    owners: list[int] = []
    for name, transformer, selected in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        for i, column in enumerate(selected):
            owners.extend([columns.index(column)] * _width(name, transformer, i))
    return np.asarray(owners), columns


def _width(name: str, transformer: Any, i: int) -> int:
    """Columns the fitted ``transformer`` (a step of the ColumnTransformer named ``name``,
    :func:`mlserve.training.preprocessing.build_preprocessor`) makes of its ``i``-th input:
    a capped one-hot encoder one per kept value plus one "infrequent" column if any
    value was grouped; ordinal codes one; target encoding one, or one per class for a
    multiclass target (feature-major, as scikit-learn's ``TargetEncoder`` orders them).
    """
    if name == "categorical":
        encoder = transformer.named_steps["one_hot"]
        if not isinstance(encoder, OneHotEncoder):
            return 1  # OrdinalEncoder: native categorical splits
        infrequent = getattr(encoder, "infrequent_categories_", [None] * (i + 1))[i]
        kept = len(encoder.categories_[i])
        return kept if infrequent is None else kept - len(infrequent) + 1
    if name == "bounded":
        encoder = transformer.named_steps["target"]
        return len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1
    return 1


def target_classes(estimator: Any, Xt: np.ndarray, classes: list[Any] | None) -> np.ndarray | None:
    """Index of the explained class per row: the positive class if binary, else predicted
    (``estimator.predict`` of ``Xt``, labels among ``classes``); ``None`` for a regressor."""
    if classes is None:
        return None
    if len(classes) == 2:
        return np.ones(len(Xt), dtype=int)
    predicted = estimator.predict(Xt)
    lookup = {label: k for k, label in enumerate(classes)}
    return np.asarray([lookup[label] for label in predicted.tolist()], dtype=int)


def _pick(values: np.ndarray, target: np.ndarray | None) -> np.ndarray:
    """Rows' values of their explained class from (n, p, K) or (n, K); 2-D/1-D unchanged."""
    if target is None or values.ndim == 1 + (values.ndim == 3):
        return values
    rows = np.arange(values.shape[0])
    return values[rows, :, target] if values.ndim == 3 else values[rows, target]


def _tree(
    shapley: tuple[np.ndarray, np.ndarray],
    estimator: Any,
    Xt: np.ndarray,
    target: np.ndarray | None,
) -> tuple:
    values, expected = shapley
    if target is not None and isinstance(estimator, HistGradientBoostingClassifier):
        raw = estimator.decision_function(Xt)
        space = "log-odds"
        if raw.ndim == 1:  # binary: one margin, of the positive class
            return values.reshape(len(Xt), -1), np.full(len(Xt), expected[0]), raw, space
        return _pick(values, target), expected[target], _pick(raw, target), space
    if target is not None:
        proba = estimator.predict_proba(Xt)
        return _pick(values, target), expected[target], _pick(proba, target), "probability"
    return values, np.full(len(Xt), expected[0]), estimator.predict(Xt), "raw"


def _linear_core(estimator: Any) -> Any:
    """The linear model of ``estimator`` (also inside a target-scaling wrapper), else None."""
    inner = estimator.regressor_ if isinstance(estimator, TransformedTargetRegressor) else estimator
    if type(inner).__module__.startswith("sklearn.linear_model") and hasattr(inner, "coef_"):
        return inner
    return None


def permutation_values(
    shap: Any, estimator: Any, Xt: np.ndarray, *, masker: Any, target: Any, budget_s: float
) -> tuple:
    """``shap.PermutationExplainer`` values of each row of ``Xt`` (n_rows, n_columns).

    ``estimator`` needs ``predict`` (regression: ``target`` None) or ``predict_proba``
    (the ``target`` class per row); ``masker`` holds the background. Returns values
    (n_rows, n_columns), base values and outputs (n_rows,) and the output space.

    Raises
    ------
    BudgetExceeded
        Past ``budget_s`` seconds, checked between rows.
    """
    started = time.perf_counter()
    values = np.zeros_like(Xt)
    base = np.zeros(len(Xt))
    output = np.zeros(len(Xt))
    for i in range(len(Xt)):
        if time.perf_counter() - started > budget_s:
            raise BudgetExceeded(
                f"the explanation ran over explain_budget_s={budget_s} after {i} rows: "
                "ask for fewer rows",
                {"field": "instances", "rows_done": i},
            )
        k = None if target is None else int(target[i])
        f = _output_function(estimator, k)
        explained = shap.PermutationExplainer(f, masker, seed=0)(
            Xt[i : i + 1], max_evals=PERMUTATIONS * (2 * Xt.shape[1] + 1), silent=True
        )
        values[i] = explained.values[0]
        base[i] = float(np.atleast_1d(explained.base_values)[0])
        output[i] = float(f(Xt[i : i + 1])[0])
    return values, base, output, "raw" if target is None else "probability"


def warm_up(shap: Any, row: np.ndarray, f: Any, masker: Any) -> None:
    """Explain ``row`` (1, n_columns) once with ``f``, so that shap's numba kernels are
    compiled (or loaded from the on-disk cache) when an explainer is built, not within
    the time budget of the first request it explains."""
    shap.PermutationExplainer(f, masker, seed=0)(row, max_evals=2 * row.shape[1] + 1, silent=True)


def _output_function(estimator: Any, k: int | None) -> Any:
    if k is None:
        return lambda rows: np.asarray(estimator.predict(rows), np.float64)
    return lambda rows: np.asarray(estimator.predict_proba(rows), np.float64)[:, k]


def summary(explanation: Explanation) -> list[dict[str, Any]]:
    """Mean |contribution| per feature, largest first: ``{"feature", "mean_abs"}``."""
    means = np.abs(explanation.contributions).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    return [{"feature": explanation.features[j], "mean_abs": float(means[j])} for j in order]
