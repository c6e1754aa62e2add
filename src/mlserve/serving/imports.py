"""Registering a model file trained anywhere: ONNX or skops, checked, then versioned.

:func:`register_import` is what ``POST /api/v1/models/{name}/versions`` calls. Every
check runs on the bytes in memory before anything is written (docs/import.md): the
format checks (:mod:`mlserve.serving.import_onnx`, :mod:`mlserve.serving.import_skops`),
the signature, and a sample run. Only then is the file written to the artifact store
and the version row committed; if the commit fails the file is deleted, so a refused
or failed import leaves neither a row nor a file.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from mlserve.context import Context
from mlserve.errors import ValidationFailed
from mlserve.registry import service as registry
from mlserve.serving.explain_imported import background_records
from mlserve.serving.import_meta import parse_metadata, parse_sample
from mlserve.serving.import_onnx import check_onnx
from mlserve.serving.import_plan import ImportPlan, plan_onnx
from mlserve.serving.import_skops import plan_skops
from mlserve.store.orm import ModelVersion

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(kw_only=True)
class ModelUpload:
    """One import request.

    Attributes
    ----------
    name : str
        Registered model name (created if new).
    filename : str
        As uploaded; ``.onnx`` or ``.skops`` (else the content decides: a zip is skops).
    data : bytes
        The file.
    metadata, sample : str or None
        The JSON form fields (see :class:`mlserve.serving.import_meta.ImportMetadata`).
    """

    name: str
    filename: str
    data: bytes
    metadata: str | None = None
    sample: str | None = None


def register_import(ctx: Context, upload: ModelUpload) -> ModelVersion:
    """Check ``upload`` and register it as the next version of ``upload.name``.

    Returns
    -------
    ModelVersion
        ``source`` ``imported``; ``imported`` holds format, producer, opset, layout
        and the tensor signature.

    Raises
    ------
    ValidationFailed
        A bad name, metadata or sample, a file refused by the checks (see
        :func:`~mlserve.serving.import_onnx.check_onnx` and
        :func:`~mlserve.serving.import_skops.plan_skops`), or a failed sample run.
    PayloadTooLarge
        A file or declared tensor over ``max_model_bytes``.
    """
    if not MODEL_NAME.match(upload.name):
        raise ValidationFailed(
            "model name: 1 to 100 letters, digits, '_', '.', '-'", {"field": "name"}
        )
    meta = parse_metadata(upload.metadata)
    sample = parse_sample(upload.sample)
    fmt = file_format(upload.filename, upload.data)
    limit = ctx.settings.max_model_bytes
    if fmt == "skops":
        plan, pipeline = plan_skops(upload.data, meta, sample, limit)
        algorithm = f"skops:{type(pipeline.steps[-1][1]).__name__}"
    else:
        plan = plan_onnx(check_onnx(upload.data, limit), upload.data, meta, sample)
        algorithm = f"onnx:{plan.info['framework'] or 'unknown'}"
    return _store(ctx, upload, plan, algorithm[:64], fmt, sample=sample)


def file_format(filename: str, data: bytes) -> str:
    """``skops`` or ``onnx``, from the extension, else from the content (a zip is skops).

    Raises
    ------
    ValidationFailed
        An extension other than ``.onnx`` and ``.skops`` (``.pkl``, ``.joblib``, ``.pt``,
        ``.h5``...: formats whose loading can run code are never read).
    """
    lowered = filename.lower()
    if lowered.endswith(".skops"):
        return "skops"
    if lowered.endswith(".onnx"):
        return "onnx"
    if "." in lowered.rsplit("/", 1)[-1]:
        raise ValidationFailed(
            "send an .onnx or .skops file (pickle, joblib, torch and Keras files are refused)",
            {"field": "file", "filename": filename[:200]},
        )
    return "skops" if data.startswith(ZIP_MAGIC) else "onnx"


def _store(
    ctx: Context, upload: ModelUpload, plan: ImportPlan, algorithm: str, fmt: str, *, sample: Any
) -> ModelVersion:
    artifact = ctx.store.put_bytes(f"models/imported-{uuid.uuid4().hex}.{fmt}", upload.data)
    fields = registry.ImportedVersion(
        task=plan.task,
        algorithm=algorithm,
        signature=plan.signature,
        runtime=plan.runtime,
        imported=plan.info,
        artifact=artifact,
    )
    try:
        with ctx.db.session() as session:
            row = registry.add_imported_version(session, upload.name, fields)
            background = background_records(plan.signature, sample)
            if background is not None:  # the background of its explanations
                row.evaluation = {"explain_background": background}
    except BaseException:
        ctx.store.delete(artifact.key)
        raise
    ctx.resolver.invalidate(upload.name)
    return row
