"""Marshmallow schemas of the API's bodies, for validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from apiflask import Schema
from apiflask.fields import Boolean, Dict, File, Float, Integer, List, Nested, Raw, String
from apiflask.fields import DateTime as _DateTime
from apiflask.validators import Length, OneOf, Range
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from mlserve.api.training_schemas import TrainingOut
from mlserve.store.orm import as_utc


class DateTime(_DateTime):
    """ISO 8601 timestamp, always with its UTC offset (SQLite returns naive values)."""

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return super()._serialize(as_utc(value) if value else value, attr, obj, **kwargs)


class ErrorBody(Schema):
    code = String(required=True, metadata={"description": "machine-readable error code"})
    message = String(required=True)
    details = Dict(required=True)


class ErrorOut(Schema):
    error = Nested(ErrorBody, required=True)


class HistogramOut(Schema):
    edges = List(Float(), required=True, metadata={"description": "n + 1 bin edges"})
    counts = List(Integer(), required=True, metadata={"description": "n bin counts"})


class ColumnOut(Schema):
    name = String(required=True)
    type = String(required=True, metadata={"description": "number, integer, boolean or string"})
    dtype = String(required=True)
    missing = Integer(required=True, metadata={"description": "rows with no value"})
    unique = Integer(required=True, metadata={"description": "distinct non-missing values"})
    min = Float(allow_none=True)
    max = Float(allow_none=True)
    mean = Float(allow_none=True)
    std = Float(allow_none=True)
    top = List(Dict(), metadata={"description": "most frequent values with counts"})
    role = String(
        metadata={
            "description": "feature, id, constant, high_cardinality or free_text; training "
            "leaves id and constant columns out unless features are named (absent for "
            "datasets uploaded before roles)"
        }
    )
    role_reason = String(metadata={"description": "why the column has its role"})
    histogram = Nested(
        HistogramOut,
        metadata={
            "description": "numeric columns: at most 20 equal-width bins of the finite values "
            "(absent for all-missing columns and datasets uploaded before histograms)"
        },
    )


class DatasetUploadIn(Schema):
    file = File(required=True, metadata={"description": "CSV (UTF-8, header row) or Parquet"})
    name = String(validate=Length(1, 200))


class ModelImportIn(Schema):
    file = File(
        required=True,
        metadata={"description": "an .onnx or .skops model file (at most max_model_bytes)"},
    )
    metadata = String(
        metadata={
            "description": "JSON object: task, description, framework, feature_names (columns "
            "of one [N, F] input), features ([{name, type}]), classes, output_name, "
            "label_output, proba_output, anything else (kept)"
        }
    )
    sample = String(
        metadata={
            "description": "JSON: a few rows (list of records or {feature: [values]}) or, for a "
            "tensor model, {input: nested list}; run before the version exists"
        }
    )


class PredictCsvIn(Schema):
    file = File(required=True, metadata={"description": "CSV (UTF-8, header row)"})


class DatasetOut(Schema):
    id = String(required=True)
    name = String(required=True)
    filename = String(required=True)
    source_format = String(required=True)
    n_rows = Integer(required=True)
    n_columns = Integer(required=True)
    size_bytes = Integer(required=True, metadata={"description": "stored Parquet size"})
    sha256 = String(required=True)
    columns = List(Nested(ColumnOut), required=True)
    created_at = DateTime(required=True)
    same_content_as = List(
        String(),
        metadata={
            "description": "other datasets with the same stored content (sha256), oldest "
            "first: the same table uploaded again (upload and GET of one dataset only)"
        },
    )


class DatasetListOut(Schema):
    datasets = List(Nested(DatasetOut), required=True)


class PreviewIn(Schema):
    rows = Integer(load_default=20, validate=Range(1, 100), metadata={"description": "1 to 100"})


class PreviewOut(Schema):
    columns = List(String(), required=True)
    rows = List(
        List(Raw(allow_none=True)),
        required=True,
        metadata={"description": "the first rows, values in column order, null for missing"},
    )
    n_rows = Integer(required=True, metadata={"description": "rows in the whole dataset"})


class PageIn(Schema):
    limit = Integer(load_default=100, validate=Range(1, 1000))
    offset = Integer(load_default=0, validate=Range(0, 2**31 - 1))


def _report_field() -> Dict:
    """A job's or version's ``report`` (:class:`mlserve.store.documents.TrainingReport`)."""
    return Dict(
        allow_none=True,
        metadata={
            "description": "what the job decided: columns (name, role, used, reason; id-like "
            "and constant columns are left out unless features are named), encoding "
            "(feature -> how it is encoded), leaderboard (algorithm auto); null before"
        },
    )


class JobOut(Schema):
    id = String(required=True)
    dataset_id = String(required=True)
    model_name = String(required=True)
    status = String(
        required=True, metadata={"description": "queued, running, succeeded, failed, cancelled"}
    )
    progress = Float(required=True, metadata={"description": "fraction done, 0 to 1"})
    stage = String(required=True)
    error = String(allow_none=True)
    model_version = Integer(allow_none=True)
    spec = Dict(required=True)
    report = _report_field()
    created_at = DateTime(required=True)
    started_at = DateTime(allow_none=True)
    finished_at = DateTime(allow_none=True)


class JobListOut(Schema):
    jobs = List(Nested(JobOut), required=True)


class VersionOut(Schema):
    model_name = String(required=True)
    version = Integer(required=True)
    task = String(required=True)
    algorithm = String(required=True)
    params = Dict(required=True)
    metrics = Dict(required=True)
    cv_metrics = Dict(required=True)
    signature = Dict(required=True)
    dataset_id = String(allow_none=True)
    job_id = String(allow_none=True)
    training_seconds = Float(required=True, metadata={"description": "final fit, seconds"})
    artifact_sha256 = String(required=True)
    artifact_size_bytes = Integer(required=True)
    runtime = String(
        required=True, metadata={"description": "what serves predictions: onnx or sklearn"}
    )
    serving = Dict(
        required=True,
        metadata={
            "description": "compilation report (runtime, reason, tolerance, max errors) "
            "and the micro-batching calibration"
        },
    )
    onnx_sha256 = String(allow_none=True)
    onnx_size_bytes = Integer(allow_none=True)
    corrupt_reason = String(
        allow_none=True,
        metadata={"description": "why the last load of the artifact failed (null: sound)"},
    )
    report = _report_field()
    online = Dict(
        allow_none=True,
        metadata={
            "description": "online update lineage (parent and root version, consumed sample "
            "id range, samples held out and rows replayed, unseen categories, prequential "
            "error) and the guard's decision on the guard window, older samples and test "
            "split: status production or candidate, with its reason; null for trained versions"
        },
    )
    source = String(
        required=True,
        metadata={"description": "trained (a training job or online update) or imported (a file)"},
    )
    imported = Dict(
        allow_none=True,
        metadata={
            "description": "for an imported file: format (onnx, skops), framework, producer_name, "
            "producer_version, opset, layout (columns, matrix, pipeline, tensor), tensors "
            "(V2 inputs and outputs: name, datatype, shape with -1 for dynamic axes), "
            "label_output, proba_output and the metadata sent; null for trained versions"
        },
    )
    has_evaluation = Boolean(
        required=True,
        metadata={
            "description": "whether GET .../evaluation has plot data for the version "
            "(false: registered before mlserve recorded them; that call answers 404)"
        },
    )
    has_reference = Boolean(
        required=True,
        metadata={
            "description": "whether GET .../drift can measure drift: reference statistics "
            "of the version or, made by an online update, of its lineage root (false: "
            "registered before mlserve stored them; that call answers 409)"
        },
    )
    aliases = List(String(), required=True)
    created_at = DateTime(required=True)


class VersionItemOut(VersionOut):
    """A version inside a list. A class of its own because apiflask registers a
    response schema it first met nested under a second name (VersionOut1)."""


class VersionListOut(Schema):
    versions = List(Nested(VersionItemOut), required=True)


class ModelSummaryOut(Schema):
    name = String(required=True)
    latest_version = Integer(allow_none=True)
    aliases = Dict(keys=String(), values=Integer(), required=True)
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)


class ModelOut(ModelSummaryOut):
    versions = List(Nested(VersionItemOut), required=True)


class ModelListOut(Schema):
    models = List(Nested(ModelSummaryOut), required=True)


class ArmIn(BaseModel):
    """A candidate version of a traffic policy and its share of live requests."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = PydanticField(ge=1, le=2**31 - 1)
    weight: float = PydanticField(gt=0, le=1, description="share of live requests, (0, 1]")


class RuleIn(BaseModel):
    """The automatic promote/rollback rule of a traffic policy."""

    model_config = ConfigDict(extra="forbid", strict=True)

    min_feedback: int = PydanticField(
        default=200, ge=1, le=1_000_000, description="rows with feedback on the candidate first"
    )
    tolerance: float = PydanticField(
        default=0.02, ge=0, le=1, description="how much worse than the primary it may be"
    )


class AliasIn(BaseModel):
    """Body of ``PUT /api/v1/models/{name}/aliases/{alias}`` (docs/traffic.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = PydanticField(
        ge=1, le=2**31 - 1, description="model version the alias points at (the primary)"
    )
    canary: ArmIn | None = PydanticField(
        default=None, description="one candidate answering a share of live requests"
    )
    split: list[ArmIn] | None = PydanticField(
        default=None, max_length=8, description="A/B: candidates with their shares"
    )
    shadow: list[int] | None = PydanticField(
        default=None, max_length=8, description="versions getting a copy of every request"
    )
    auto: RuleIn | None = PydanticField(
        default=None, description="promote or roll back the one candidate by itself"
    )


class AliasOut(Schema):
    model_name = String(required=True)
    alias = String(required=True)
    version = Integer(required=True)
    policy = Dict(
        allow_none=True,
        metadata={"description": "split, shadow and auto of a traffic policy; null: plain"},
    )


class PromoteIn(BaseModel):
    """Body of ``POST .../aliases/{alias}/promote``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int | None = PydanticField(
        default=None, ge=1, le=2**31 - 1, description="the candidate (default: the only one)"
    )


class HealthOut(Schema):
    status = String(required=True)
    checks = Dict()


class AnyOut(Schema):
    data = Raw()


class KeyIn(BaseModel):
    """Body of ``POST /api/v1/keys``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["viewer", "predictor", "trainer", "admin"] = PydanticField(
        description="viewer: read; predictor: predict; trainer: read, predict, datasets, "
        "training, aliases; admin: everything, keys and the audit log"
    )
    name: str = PydanticField(
        default="",
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="what the key is for (no control characters)",
    )
    expires_in_days: float | None = PydanticField(
        default=None, gt=0, le=36_500, description="lifetime in days; null: never expires"
    )


class KeyOut(Schema):
    prefix = String(required=True, metadata={"description": "public part, shown in the audit log"})
    role = String(required=True)
    name = String(required=True)
    created_by = String(allow_none=True)
    created_at = DateTime(required=True)
    expires_at = DateTime(allow_none=True)
    revoked_at = DateTime(allow_none=True)
    last_used_at = DateTime(allow_none=True)


class CreatedKeyOut(KeyOut):
    key = String(required=True, metadata={"description": "the whole key: shown this once only"})


class KeyItemOut(KeyOut):
    """A key inside a list (a class of its own, see :class:`VersionItemOut`)."""


class KeyListOut(Schema):
    keys = List(Nested(KeyItemOut), required=True)


class AuditEventOut(Schema):
    id = Integer(required=True)
    at = DateTime(required=True)
    key_prefix = String(allow_none=True)
    remote_addr = String(allow_none=True)
    method = String(required=True)
    route = String(required=True)
    object = String(allow_none=True)
    status = Integer(required=True)
    outcome = String(required=True, metadata={"description": "ok, denied, rejected or error"})


class AuditListOut(Schema):
    events = List(Nested(AuditEventOut), required=True)


class AlgorithmsIn(Schema):
    task = String(validate=OneOf(["regression", "classification"]))


class ParamFormOut(Schema):
    type = String(
        required=True, metadata={"description": "number, integer, boolean, string or array"}
    )
    items = String(
        allow_none=True, metadata={"description": "the items' type of an array (integer)"}
    )
    choices = List(Raw(), allow_none=True, metadata={"description": "allowed values, or null"})
    minimum = Float(allow_none=True)
    maximum = Float(allow_none=True)
    exclusive_minimum = Boolean(required=True)
    exclusive_maximum = Boolean(required=True)


class ParamOut(Schema):
    name = String(required=True)
    default = Raw(allow_none=True, metadata={"description": "mlserve's default"})
    type = String(
        required=True,
        metadata={"description": "the default's form: number, integer, boolean, string or array"},
    )
    items = String(
        allow_none=True,
        metadata={"description": "array: its items' type (integer; bounds: minimum, maximum)"},
    )
    choices = List(Raw(), allow_none=True)
    minimum = Float(allow_none=True)
    maximum = Float(allow_none=True)
    exclusive_minimum = Boolean(required=True)
    exclusive_maximum = Boolean(required=True)
    nullable = Boolean(required=True, metadata={"description": "null is accepted"})
    accepts = List(
        Nested(ParamFormOut),
        required=True,
        metadata={"description": "every JSON form the estimator accepts (the first fields: "
                  "the form of the default)"},
    )  # fmt: skip


class AlgorithmOut(Schema):
    name = String(required=True)
    task = String(required=True)
    estimator = String(
        required=True, metadata={"description": "estimator class (scikit-learn API)"}
    )
    incremental = Boolean(
        required=True, metadata={"description": "learns online from samples (partial_fit)"}
    )
    available = Boolean(
        required=True,
        metadata={
            "description": "false when an optional dependency it needs is not installed on "
            "the server (training it is then a 422 naming the extra)"
        },
    )
    install_hint = String(
        allow_none=True,
        metadata={"description": "how to install what is missing, e.g. pip install "
                  "'mlserve[torch]'; null when available"},
    )  # fmt: skip
    params = List(Nested(ParamOut), required=True)


class AlgorithmListOut(Schema):
    algorithms = List(Nested(AlgorithmOut), required=True)


class PredictedVsActualOut(Schema):
    actual = List(Float(), required=True)
    predicted = List(Float(), required=True)
    n_total = Integer(required=True, metadata={"description": "test rows (points: at most 2,000)"})


class ConfusionMatrixOut(Schema):
    labels = List(Raw(), required=True)
    matrix = List(
        List(Integer()), required=True, metadata={"description": "rows actual, columns predicted"}
    )


class RocCurveOut(Schema):
    label = Raw(required=True, metadata={"description": "the positive class"})
    fpr = List(Float(), required=True)
    tpr = List(Float(), required=True)
    auc = Float(allow_none=True)


class PrecisionRecallOut(Schema):
    label = Raw(required=True, metadata={"description": "the positive class"})
    precision = List(Float(), required=True)
    recall = List(Float(), required=True)
    average_precision = Float(allow_none=True)


class ImportanceOut(Schema):
    feature = String(required=True)
    mean = Float(allow_none=True, metadata={"description": "mean drop of the score"})
    std = Float(allow_none=True)


class ImportanceSampleOut(Schema):
    rows = Integer(required=True, metadata={"description": "rows permuted"})
    repeats = Integer(required=True, metadata={"description": "shuffles per feature"})
    budget_s = Float(
        allow_none=True,
        metadata={
            "description": "time allowed, in seconds: a twentieth of the fitting time "
            "(cross-validation and final fit), at least 0.1, at most the fitting time"
        },
    )


class ShapFeatureOut(Schema):
    feature = String(required=True)
    mean_abs = Float(required=True, metadata={"description": "mean |SHAP contribution|"})


class ShapSummaryOut(Schema):
    method = String(required=True, metadata={"description": "linear, tree or permutation"})
    output_space = String(required=True, metadata={"description": "raw, log-odds or probability"})
    rows = Integer(required=True, metadata={"description": "test rows explained"})
    features = List(Nested(ShapFeatureOut), required=True)


class EvaluationOut(Schema):
    model_name = String(required=True)
    version = Integer(required=True)
    task = String(required=True)
    rows = String(
        metadata={
            "description": "which rows the plots are computed on: 'test split' (training "
            "job) or 'guard window' (online update); absent: test split"
        }
    )
    n_test = Integer(
        required=True, metadata={"description": "rows evaluated (test split or guard window)"}
    )
    predicted_vs_actual = Nested(PredictedVsActualOut)
    residuals = Nested(HistogramOut, metadata={"description": "actual - predicted"})
    confusion_matrix = Nested(ConfusionMatrixOut)
    roc = List(Nested(RocCurveOut))
    precision_recall = List(Nested(PrecisionRecallOut))
    permutation_importance = List(Nested(ImportanceOut), required=True)
    permutation_importance_sample = Nested(
        ImportanceSampleOut,
        metadata={
            "description": "what the permutation importance was computed on, within its "
            "time budget (absent: versions evaluated before budgets, 2,000 rows, 5 repeats)"
        },
    )
    cv = Dict(required=True, metadata={"description": "the version's cv_metrics"})
    shap_summary = Nested(
        ShapSummaryOut,
        metadata={"description": "mean |SHAP contribution| per feature on test rows (training)"},
    )
    training = Nested(
        TrainingOut,
        metadata={
            "description": "estimators trained in epochs (torch_mlp): device, torch version, "
            "train and validation loss per epoch, best epoch"
        },
    )
