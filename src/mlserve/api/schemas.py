"""Marshmallow schemas of the API's bodies, for validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from apiflask import Schema
from apiflask.fields import DateTime as _DateTime
from apiflask.fields import Dict, File, Float, Integer, List, Nested, Raw, String
from apiflask.validators import Length, Range
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from mlserve.models import as_utc


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


class DatasetUploadIn(Schema):
    file = File(required=True, metadata={"description": "CSV (UTF-8, header row) or Parquet"})
    name = String(validate=Length(1, 200))


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


class DatasetListOut(Schema):
    datasets = List(Nested(DatasetOut), required=True)


class PageIn(Schema):
    limit = Integer(load_default=100, validate=Range(1, 1000))
    offset = Integer(load_default=0, validate=Range(0, 2**31 - 1))


class JobOut(Schema):
    id = String(required=True)
    dataset_id = String(required=True)
    model_name = String(required=True)
    status = String(required=True, metadata={"description": "queued, running, succeeded, failed"})
    progress = Float(required=True, metadata={"description": "fraction done, 0 to 1"})
    stage = String(required=True)
    error = String(allow_none=True)
    model_version = Integer(allow_none=True)
    spec = Dict(required=True)
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
    online = Dict(
        allow_none=True,
        metadata={
            "description": "online update lineage (parent and root version, applied sample "
            "id range, unseen categories) and the guard's decision: status production or "
            "candidate, with its reason; null for trained versions"
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


class AliasIn(BaseModel):
    """Body of ``PUT /api/v1/models/{name}/aliases/{alias}``."""

    model_config = ConfigDict(extra="forbid")

    version: int = PydanticField(
        ge=1, le=2**31 - 1, description="model version the alias points at"
    )


class AliasOut(Schema):
    model_name = String(required=True)
    alias = String(required=True)
    version = Integer(required=True)


class HealthOut(Schema):
    status = String(required=True)
    checks = Dict()


class AnyOut(Schema):
    data = Raw()


class KeyIn(BaseModel):
    """Body of ``POST /api/v1/keys``."""

    model_config = ConfigDict(extra="forbid")

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
