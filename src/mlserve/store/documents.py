"""Named shapes of the JSON documents stored with datasets, jobs and model versions.

These travel between training, the registry, serving, online learning, monitoring,
the API and the web pages, and are stored as JSON columns (:mod:`mlserve.store.orm`),
so they are declared once here, at the bottom of the import graph, as
:class:`typing.TypedDict` s: mypy then checks every producer and consumer against
one definition. A key marked ``NotRequired`` is absent, not ``None``, when it does
not apply. Numbers that cannot be computed (a metric on one class) are ``None``.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

LogicalType = Literal["number", "integer", "boolean", "string"]
Task = Literal["regression", "classification"]
ColumnRole = Literal["feature", "id", "constant", "high_cardinality", "free_text"]


class FeatureSpec(TypedDict):
    """One input feature of a signature.

    ``nullable``: the feature had missing values in training; ``imputed``: the pipeline
    imputes it (every feature of versions trained since issue 14), so it accepts ``null``
    too (absent on older versions: only ``nullable`` features accept ``null``);
    ``categories``: the text values seen in training (at most 1,000).
    """

    name: str
    type: LogicalType
    nullable: bool
    imputed: NotRequired[bool]
    categories: NotRequired[list[str]]


class OutputSpec(TypedDict):
    """What a version predicts: the target's name and type; ``classes`` in the
    estimator's order (classifiers)."""

    name: str
    type: str
    classes: NotRequired[list[Any]]


class Signature(TypedDict):
    """The inputs a version accepts and the output it gives
    (:mod:`mlserve.training.signature`)."""

    inputs: list[FeatureSpec]
    output: OutputSpec


class TensorSpec(TypedDict):
    """One input or output tensor in Open Inference Protocol terms: ``datatype`` is an OIP
    datatype (``FP32``, ``FP64``, ``INT64``, ``BYTES``...) and ``-1`` marks a dynamic axis."""

    name: str
    datatype: str
    shape: list[int]


class TensorSignature(TypedDict):
    """The tensors a model takes and gives (V2 model metadata)."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class ImportInfo(TypedDict):
    """What an imported model file states (:mod:`mlserve.serving.imports`).

    ``format``: ``onnx`` or ``skops``; ``layout``: how tabular rows reach the model
    (``columns``: one graph input per feature; ``matrix``: one ``[N, F]`` input in
    ``features`` order; ``pipeline``: a scikit-learn estimator fed a DataFrame) or
    ``tensor`` (no tabular signature: V2 tensors only). ``label_output`` and
    ``proba_output`` name the graph outputs that give labels/values and probabilities.
    """

    format: str
    framework: str
    producer_name: str
    producer_version: str
    opset: dict[str, int]
    layout: str
    tensors: TensorSignature
    label_output: str | None
    proba_output: str | None
    metadata: dict[str, Any]


class Histogram(TypedDict):
    """Equal-width histogram: ``n + 1`` edges, ``n`` counts
    (:func:`mlserve.datasets.stats.histogram`)."""

    edges: list[float]
    counts: list[int]


class CategoryCount(TypedDict):
    """How often a text value occurs in a column."""

    value: str
    count: int


class ColumnSummary(TypedDict):
    """Schema and statistics of one dataset column (:func:`mlserve.datasets.stats.column_summary`).

    ``missing`` and ``unique`` count rows and distinct non-missing values; numeric
    columns have ``min``, ``max``, ``mean``, ``std`` (and ``histogram`` when a value
    is finite), the others ``top`` (the 10 most frequent values). ``role`` and
    ``role_reason``: see :mod:`mlserve.datasets.roles` (absent on datasets stored before).
    """

    name: str
    type: LogicalType
    dtype: str
    missing: int
    unique: int
    min: NotRequired[float | None]
    max: NotRequired[float | None]
    mean: NotRequired[float | None]
    std: NotRequired[float | None]
    histogram: NotRequired[Histogram]
    top: NotRequired[list[CategoryCount]]
    role: NotRequired[ColumnRole]
    role_reason: NotRequired[str]


class ColumnDecision(TypedDict):
    """Whether a training job used a column, and why (:mod:`mlserve.training.columns`).

    ``role``: the column's role (:mod:`mlserve.datasets.roles`); ``used``: it is a
    feature of the model; ``reason``: why it was left out, or how it is encoded.
    """

    name: str
    role: ColumnRole
    used: bool
    reason: str


class LeaderboardEntry(TypedDict):
    """One candidate of an ``algorithm: "auto"`` job (:mod:`mlserve.training.auto`):
    its cross-validation metric (``metric``: ``rmse`` or ``f1_macro``, mean and
    population std over the folds, on the training split), ``fit_seconds`` (wall time of
    its cross-validation, all folds, plus the search for a ``tuned`` entry), and rank (1
    is the best, the version trained). ``params``: those set over the catalogue defaults
    (``{}``: the defaults); ``tuned``: found by the hyper-parameter search; ``skipped``:
    why it was not scored (the time budget), then ``cv_mean`` and ``cv_std`` are None
    and it ranks after every scored entry."""

    algorithm: str
    params: dict[str, Any]
    metric: str
    cv_mean: float | None
    cv_std: float | None
    fit_seconds: float
    rank: int
    tuned: NotRequired[bool]
    skipped: NotRequired[str]


class TrainingReport(TypedDict):
    """What a training job decided, kept on the job and on the version it registers.

    ``columns``: one decision per dataset column but the target; ``encoding``: feature
    -> how it is encoded; ``leaderboard``: ``algorithm: "auto"`` only.
    """

    columns: list[ColumnDecision]
    encoding: NotRequired[dict[str, str]]
    leaderboard: NotRequired[list[LeaderboardEntry]]


class RegressionMetrics(TypedDict):
    """Test metrics of a regressor: RMSE and MAE in the target's unit, R²."""

    rmse: float | None
    mae: float | None
    r2: float | None
    n_samples: int


class ConfusionMatrix(TypedDict):
    """Rows are true classes and columns predicted classes, in ``labels`` order."""

    labels: list[Any]
    matrix: list[list[int]]


class ClassificationMetrics(TypedDict):
    """Test metrics of a classifier (macro averages over classes)."""

    accuracy: float | None
    precision_macro: float | None
    recall_macro: float | None
    f1_macro: float | None
    roc_auc: float | None
    log_loss: float | None
    n_samples: int
    confusion_matrix: ConfusionMatrix


Metrics = RegressionMetrics | ClassificationMetrics


class MetricSummary(TypedDict):
    """One metric over the cross-validation folds (population standard deviation)."""

    mean: float
    std: float
    values: list[float]


class CvMetrics(TypedDict):
    """K-fold cross-validation on the training split; ``folds`` 0: not run.

    Per metric (``rmse``, ``mae``, ``r2`` or ``accuracy``, ``f1_macro``) a summary.
    """

    folds: int
    rmse: NotRequired[MetricSummary]
    mae: NotRequired[MetricSummary]
    r2: NotRequired[MetricSummary]
    accuracy: NotRequired[MetricSummary]
    f1_macro: NotRequired[MetricSummary]


class BatchingCalibration(TypedDict):
    """Whether micro-batching pays for a version, from timings at registration
    (:func:`mlserve.serving.runtime.calibrate`; times in milliseconds, medians)."""

    enabled: bool
    single_row_ms: float
    batched_row_ms: float
    batch_rows: int
    reason: str
    runtime: NotRequired[str]


class CompileReport(TypedDict):
    """What compiling a pipeline to ONNX gave (:func:`mlserve.serving.onnx.compile_pipeline`).

    ``runtime`` is ``onnx`` when every prediction on the ``rows_checked`` held-out rows
    agreed within ``tolerance``, else ``sklearn`` with ``reason``. ``max_abs_error`` is
    the largest ``|onnx - sklearn|`` (of predictions, or probabilities for classifiers)
    and ``max_rel_error`` the same divided by ``output_scale`` (the largest
    ``|sklearn|``); ``None`` when no comparison ran. ``seconds``: compile and check time.
    ``folded_scaling``: the graph's linear weights absorbed the scaler
    (:mod:`mlserve.serving.onnx_linear`; absent from reports written before it).
    """

    runtime: str
    reason: str | None
    tolerance: dict[str, float]
    rows_checked: int
    max_abs_error: float | None
    max_rel_error: float | None
    output_scale: float | None
    precision: str | None
    opset: dict[str, int]
    converter: str
    seconds: float
    label_mismatches: NotRequired[int | None]
    folded_scaling: NotRequired[bool]


class ServingReport(TypedDict):
    """How a version is served: its compilation report and batching calibration."""

    compile: CompileReport
    batching: BatchingCalibration


class SampleWindow(TypedDict):
    """A range of stored samples (ids inclusive)."""

    first_sample_id: int
    last_sample_id: int
    n_samples: int


class GuardSet(TypedDict):
    """A set of rows the guard scores both versions on (:mod:`mlserve.online.guard`):
    ``guard window``, ``older samples`` or ``test split``; not ``judged`` (metrics
    ``None``, neither passes nor fails) below ``online_guard_min_rows`` rows. ``root``:
    the lineage root's metric on the same rows, shown, not judged (absent before)."""

    name: str
    n_samples: int
    candidate: float | None
    production: float | None
    judged: bool
    passed: bool
    root: NotRequired[float | None]


class GuardDecision(TypedDict):
    """The guard's decision on a version made by an online update (:mod:`mlserve.online.guard`).

    ``passed`` when, on every judged set of ``sets``, the candidate's metric is no worse
    than production's by more than ``tolerance`` times production's metric.
    ``candidate``, ``production`` and ``window`` are the guard window's (the first set);
    ``sets`` is absent in decisions recorded before the guard judged more than the window.
    """

    metric: str
    candidate: float
    production: float
    production_version: int
    tolerance: float
    window: SampleWindow
    passed: bool
    sets: NotRequired[list[GuardSet]]


class PrequentialScore(TypedDict):
    """Prequential error of the samples one version scored (:mod:`mlserve.online.prequential`):
    ``total`` squared errors or correct predictions over ``n_samples``; ``value`` the
    RMSE or accuracy."""

    version: int
    n_samples: int
    total: float
    value: float | None


class Prequential(TypedDict):
    """Test-then-train error of the samples an update consumed, each predicted by the
    version live when it arrived, before any update learned it; ``received_from`` and
    ``received_to``: their arrival times (ISO 8601); ``by_version``: per scoring version."""

    metric: str
    n_samples: int
    total: float
    value: float | None
    received_from: str
    received_to: str
    by_version: list[PrequentialScore]


class Lineage(TypedDict):
    """How an online update made a version: parent, samples applied, guard decision.

    ``root_version`` is the trained version the lineage starts from; ``status`` is
    ``production`` or ``candidate`` and ``reason`` the guard's decision in a sentence.
    ``first_sample_id`` to ``last_sample_id`` (``n_samples`` of them) are the samples
    the update consumed: ``n_held_out`` of them, chosen by a hash of the seed and the id,
    were kept out of learning for the guard's older set, the others were learned, mixed
    with ``n_replayed`` rows replayed from the reservoir, in ``passes`` passes. Versions
    made before replay existed have neither of these three keys nor ``prequential``.
    """

    parent_version: int
    root_version: int
    first_sample_id: int
    last_sample_id: int
    n_samples: int
    unseen_categories: dict[str, int]
    guard: GuardDecision
    n_held_out: NotRequired[int]
    n_replayed: NotRequired[int]
    passes: NotRequired[int]
    prequential: NotRequired[Prequential]
    status: NotRequired[str]
    reason: NotRequired[str]


class TrainingCurve(TypedDict):
    """Per pass over the data, in order: epochs of the fit, then passes of online updates
    (``online`` true; no validation loss). Losses are means over the rows of the pass."""

    epoch: list[int]
    train_loss: list[float]
    valid_loss: list[float | None]
    lr: list[float]
    online: list[bool]


class TrainingRecord(TypedDict):
    """How an estimator trained in epochs was fitted (``torch_mlp``; stored in the version's
    evaluation as ``training``, see :mod:`mlserve.training.torch_mlp`).

    ``loss`` is ``mse`` (on the standardised target) or ``cross_entropy``; ``best_epoch``
    the epoch whose weights were kept (lowest validation loss; ``None`` when never better);
    ``epochs`` the epochs the fit ran, ``online_updates`` the passes applied since.
    """

    device: str
    torch_version: str
    threads: int
    loss: str
    epochs: int
    best_epoch: int | None
    online_updates: int
    curve: TrainingCurve


class ReservoirState(TypedDict):
    """A reservoir sample of ids (Algorithm R, :mod:`mlserve.training.reservoir`): capacity
    ``size``, ``seen`` ids offered so far, the ``items`` kept: sample ids (> 0) or rows of
    the lineage root's training split (< 0; -1 is its first row)."""

    size: int
    seen: int
    items: list[int]


class KeptRows(TypedDict):
    """Rows a trained version keeps for online updates (a Parquet artifact,
    :mod:`mlserve.training.memory`): ``train_rows`` of its ``n_train`` training rows and
    ``test_rows`` of its ``n_test`` test rows, seeded reservoir samples."""

    key: str
    sha256: str
    size_bytes: int
    n_train: int
    n_test: int
    train_rows: int
    test_rows: int


class Memory(TypedDict):
    """What online updates remember (``model_version.memory``; :mod:`mlserve.online.replay`).

    ``seed`` of the draws (the training job's ``random_state``); ``replay``: the reservoir
    of training rows and learned samples replayed by the next update; ``older``: the
    reservoir of held-out samples the guard judges on; ``rows``: the kept rows of a
    trained version (its online versions read their root's).
    """

    seed: int
    replay: ReservoirState
    older: ReservoirState
    rows: NotRequired[KeptRows]


class JobProgress(TypedDict):
    """Where a training job stands: ``progress`` in [0, 1] and the ``stage`` it is in."""

    status: str
    progress: float
    stage: str
    error: str | None


class TrafficArm(TypedDict):
    """A candidate version answering a share of an alias's live traffic."""

    version: int
    weight: float


class PromotionRule(TypedDict):
    """The automatic promote/rollback rule of a policy (:mod:`mlserve.monitoring.comparison`).

    After ``min_feedback`` rows with feedback on the candidate, it is promoted when no worse
    than the primary by ``tolerance`` (the online guard's test), else the policy is removed
    (rolled back to the primary alone).
    """

    min_feedback: int
    tolerance: float


class TrafficPolicy(TypedDict):
    """What an alias does besides pointing at its primary version.

    ``split``: candidates with the share of live requests each answers (the primary
    answers the rest); a canary is a split of one. ``shadow``: versions that receive a
    copy of every request off the request path, answers logged, never returned.
    """

    split: list[TrafficArm]
    shadow: list[int]
    auto: NotRequired[PromotionRule]
