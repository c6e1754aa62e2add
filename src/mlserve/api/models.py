"""/api/v1/models: the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint
from flask import request

from mlserve.api.current import current_context
from mlserve.api.schemas import (
    AliasIn,
    AliasOut,
    EvaluationOut,
    ModelImportIn,
    ModelListOut,
    ModelOut,
    VersionListOut,
    VersionOut,
)
from mlserve.api.security import requires
from mlserve.errors import PayloadTooLarge, ValidationFailed
from mlserve.lazy import lazy_module
from mlserve.registry.traffic import parse_policy
from mlserve.store.orm import ModelAlias

if TYPE_CHECKING:
    from mlserve.registry import service as registry
    from mlserve.registry import views as registry_views
    from mlserve.serving import imports
else:
    registry = lazy_module("mlserve.registry.service")
    registry_views = lazy_module("mlserve.registry.views")
    imports = lazy_module("mlserve.serving.imports")

bp = APIBlueprint("models", __name__, url_prefix="/api/v1/models", tag="models")


@bp.get("/<name>/versions/<int:version>")
@requires("read")
@bp.output(VersionOut)
@bp.doc(
    summary="One model version: metrics, parameters, signature, lineage",
    responses={404: "not found"},
)
def get_version(name: str, version: int) -> dict[str, Any]:
    return registry_views.describe_version(current_context(), name, version)


@bp.get("/<name>/versions/<int:version>/evaluation")
@requires("read")
@bp.output(EvaluationOut)
@bp.doc(
    summary="Plot data of a version on held-out rows: the test split (training job) "
    "or the guard window (online update)",
    responses={404: "no such version, or no evaluation recorded for it (has_evaluation)"},
)
def get_evaluation(name: str, version: int) -> dict[str, Any]:
    return registry_views.describe_evaluation(current_context(), name, version)


@bp.get("")
@requires("read")
@bp.output(ModelListOut)
@bp.doc(summary="List registered models with their latest version and aliases")
def list_models() -> dict[str, Any]:
    return {"models": registry_views.describe_models(current_context())}


@bp.get("/<name>")
@requires("read")
@bp.output(ModelOut)
@bp.doc(summary="One model with its aliases and versions", responses={404: "not found"})
def get_model(name: str) -> dict[str, Any]:
    return registry_views.describe_model(current_context(), name)


@bp.get("/<name>/versions")
@requires("read")
@bp.output(VersionListOut)
@bp.doc(summary="Versions of a model, newest first", responses={404: "not found"})
def list_versions(name: str) -> dict[str, Any]:
    return {"versions": registry_views.describe_model(current_context(), name)["versions"]}


@bp.put("/<name>/aliases/<alias>")
@requires("train")
@bp.input(AliasIn, location="json")
@bp.output(AliasOut)
@bp.doc(
    summary="Point an alias (production, staging...) at a version, optionally with a traffic "
    "policy: canary, A/B split, shadow (docs/traffic.md)",
    responses={404: "unknown model or version", 422: "invalid alias or policy"},
)
def set_alias(name: str, alias: str, json_data: AliasIn) -> dict[str, Any]:
    version, policy = parse_policy(json_data.model_dump(exclude_none=True))
    row = registry.set_alias(current_context(), name, alias, version, policy)
    return alias_view(row)


def alias_view(row: ModelAlias) -> dict[str, Any]:
    """The JSON view of an alias: its primary version and policy."""
    return {
        "model_name": row.model_name,
        "alias": row.alias,
        "version": row.version,
        "policy": row.policy,
    }


@bp.delete("/<name>/aliases/<alias>")
@requires("train")
@bp.output({}, status_code=204)
@bp.doc(summary="Remove an alias", responses={404: "unknown alias"})
def delete_alias(name: str, alias: str) -> tuple[str, int]:
    registry.delete_alias(current_context(), name, alias)
    return "", 204


@bp.post("/<name>/versions")
@requires("train")
@bp.input(ModelImportIn, location="form_and_files", validation=False)
@bp.output(VersionOut, status_code=201)
@bp.doc(
    summary="Register a model file trained anywhere (ONNX or skops) as the next version",
    description="Multipart: file, optional metadata and sample (JSON). The file is checked "
    "(onnx.checker, operator domains, external data, sizes; skops type allow-list) and the "
    "sample run before anything is stored; see docs/import.md.",
    responses={413: "file over max_model_bytes", 422: "file refused (the message says why)"},
)
def import_version(name: str, form_and_files_data: Any) -> dict[str, Any]:
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed("send the model as multipart field 'file'", {"field": "file"})
    ctx = current_context()
    limit = ctx.settings.max_model_bytes
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"model file exceeds max_model_bytes={limit}", {"field": "file", "limit": limit}
        )
    row = imports.register_import(
        ctx,
        imports.ModelUpload(
            name=name,
            filename=upload.filename or "model",
            data=data,
            metadata=request.form.get("metadata"),
            sample=request.form.get("sample"),
        ),
    )
    return registry_views.describe_version(ctx, name, row.version)
