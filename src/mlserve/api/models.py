"""/api/v1/models: the registry."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import current_app

from mlserve import registry, registry_views
from mlserve.api.schemas import (
    AliasIn,
    AliasOut,
    EvaluationOut,
    ModelListOut,
    ModelOut,
    VersionListOut,
    VersionOut,
)
from mlserve.api.security import requires

bp = APIBlueprint("models", __name__, url_prefix="/api/v1/models", tag="models")


@bp.get("/<name>/versions/<int:version>")
@requires("read")
@bp.output(VersionOut)
@bp.doc(
    summary="One model version: metrics, parameters, signature, lineage",
    responses={404: "not found"},
)
def get_version(name: str, version: int) -> dict[str, Any]:
    return registry_views.describe_version(current_app.extensions["mlserve"], name, version)


@bp.get("/<name>/versions/<int:version>/evaluation")
@requires("read")
@bp.output(EvaluationOut)
@bp.doc(
    summary="Plot data of a version on held-out rows: the test split (training job) "
    "or the guard window (online update)",
    responses={404: "no such version, or no evaluation recorded for it (has_evaluation)"},
)
def get_evaluation(name: str, version: int) -> dict[str, Any]:
    return registry_views.describe_evaluation(current_app.extensions["mlserve"], name, version)


@bp.get("")
@requires("read")
@bp.output(ModelListOut)
@bp.doc(summary="List registered models with their latest version and aliases")
def list_models() -> dict[str, Any]:
    return {"models": registry_views.describe_models(current_app.extensions["mlserve"])}


@bp.get("/<name>")
@requires("read")
@bp.output(ModelOut)
@bp.doc(summary="One model with its aliases and versions", responses={404: "not found"})
def get_model(name: str) -> dict[str, Any]:
    return registry_views.describe_model(current_app.extensions["mlserve"], name)


@bp.get("/<name>/versions")
@requires("read")
@bp.output(VersionListOut)
@bp.doc(summary="Versions of a model, newest first", responses={404: "not found"})
def list_versions(name: str) -> dict[str, Any]:
    return {
        "versions": registry_views.describe_model(current_app.extensions["mlserve"], name)[
            "versions"
        ]
    }


@bp.put("/<name>/aliases/<alias>")
@requires("train")
@bp.input(AliasIn, location="json")
@bp.output(AliasOut)
@bp.doc(
    summary="Point an alias (production, staging...) at a version",
    responses={404: "unknown model or version", 422: "invalid alias"},
)
def set_alias(name: str, alias: str, json_data: AliasIn) -> dict[str, Any]:
    ctx = current_app.extensions["mlserve"]
    row = registry.set_alias(ctx, name, alias, json_data.version)
    return {"model_name": row.model_name, "alias": row.alias, "version": row.version}


@bp.delete("/<name>/aliases/<alias>")
@requires("train")
@bp.output({}, status_code=204)
@bp.doc(summary="Remove an alias", responses={404: "unknown alias"})
def delete_alias(name: str, alias: str) -> tuple[str, int]:
    registry.delete_alias(current_app.extensions["mlserve"], name, alias)
    return "", 204
