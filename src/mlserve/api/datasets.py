"""/api/v1/datasets"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint
from flask import request

from mlserve.api.current import current_context
from mlserve.api.schemas import (
    DatasetListOut,
    DatasetOut,
    DatasetUploadIn,
    PageIn,
    PreviewIn,
    PreviewOut,
)
from mlserve.api.security import requires
from mlserve.context import Context
from mlserve.errors import ValidationFailed
from mlserve.lazy import lazy_module
from mlserve.store.orm import Dataset

if TYPE_CHECKING:
    from mlserve.datasets import service
else:
    service = lazy_module("mlserve.datasets.service")

bp = APIBlueprint("datasets", __name__, url_prefix="/api/v1/datasets", tag="datasets")


@bp.post("")
@requires("train")
@bp.input(DatasetUploadIn, location="form_and_files", validation=False)
@bp.output(DatasetOut, status_code=201)
@bp.doc(
    summary="Upload a CSV or Parquet file",
    responses={413: "file too large", 415: "not CSV or Parquet", 422: "invalid file"},
)
def upload(form_and_files_data: Any) -> dict[str, Any]:
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed("send the file as multipart field 'file'", {"field": "file"})
    name = request.form.get("name")
    if name is not None and not name.strip():  # the schema says minLength 1
        raise ValidationFailed("name must not be empty (leave it out instead)", {"field": "name"})
    ctx = current_context()
    return _with_same_content(
        ctx, service.create_dataset(ctx, name, upload.filename or "upload", upload.stream)
    )


@bp.get("")
@requires("read")
@bp.input(PageIn, location="query")
@bp.output(DatasetListOut)
@bp.doc(summary="List datasets, newest first")
def list_datasets(query_data: dict[str, int]) -> dict[str, list[Dataset]]:
    ctx = current_context()
    return {"datasets": service.list_datasets(ctx, query_data["limit"], query_data["offset"])}


@bp.get("/<dataset_id>")
@requires("read")
@bp.output(DatasetOut)
@bp.doc(summary="One dataset with its columns and statistics", responses={404: "not found"})
def get_dataset(dataset_id: str) -> dict[str, Any]:
    ctx = current_context()
    return _with_same_content(ctx, service.get_dataset(ctx, dataset_id))


def _with_same_content(ctx: Context, dataset: Dataset) -> dict[str, Any]:
    """The dataset's fields, and the ids of earlier uploads of the same table."""
    names = (name for name in DatasetOut().fields if name != "same_content_as")
    return {
        **{name: getattr(dataset, name) for name in names},
        "same_content_as": service.same_content(ctx, dataset),
    }


@bp.get("/<dataset_id>/preview")
@requires("read")
@bp.input(PreviewIn, location="query")
@bp.output(PreviewOut)
@bp.doc(summary="The first rows of a dataset (1 to 100)", responses={404: "not found"})
def preview(dataset_id: str, query_data: dict[str, int]) -> dict[str, Any]:
    ctx = current_context()
    return service.preview(ctx, service.get_dataset(ctx, dataset_id), query_data["rows"])
