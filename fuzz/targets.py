"""Coverage-guided fuzz targets (atheris) for every parser that takes bytes from outside.

Usage::

    python -m fuzz.targets TARGET [libFuzzer flags]   # e.g. -max_total_time=60
    make fuzz FUZZ_SECONDS=60                         # every target, one after another

Targets:

``upload``
    :func:`mlserve.datasets.upload.parse_upload` on the bytes, named ``.csv`` and
    ``.parquet``, with small limits.
``predict-records``, ``predict-columnar``
    The bytes as the body of ``POST /api/v1/models/mixed/predict`` through the whole
    WSGI stack (fast lane, Flask, validation, the ONNX model), seeded with records and
    with columnar bodies. The fast lane decodes records by the model's features at any
    size (:mod:`mlserve.api.typedjson`), and each body is sent again with a content type
    the lane leaves to Flask: both must give the same status (and the same error).
``predict-csv``
    The bytes as the uploaded file of ``POST /api/v1/models/mixed/predict/csv``.
``predict-v2-binary``
    ``POST /v2/models/mixed/infer`` with the binary tensor extension of the Open
    Inference Protocol: the first 4 bytes (little-endian) are the
    ``Inference-Header-Content-Length`` claimed, the rest is the body (JSON header, then
    raw tensors); seeded with valid requests built from the model's V2 metadata.

A crash is an exception other than :class:`mlserve.errors.MlserveError` from a parser,
or a 5xx, or an error answer that is not the JSON envelope, from a route. libFuzzer
stops at the first one and writes its input to ``crash-*``: each becomes a regression
test. The app (SQLite under a temporary folder, one ridge model on the diabetes data
with a text, a boolean and an integer feature) is built once per process, before
fuzzing starts.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["mlserve"]):
    from mlserve import create_app
    from mlserve.api.current import context_of
    from mlserve.datasets.limits import UploadLimits
    from mlserve.datasets.upload import parse_upload
    from mlserve.errors import MlserveError
    from mlserve.security import keys as auth
    from mlserve.settings import Settings

LIMITS = UploadLimits(max_columns=50, max_rows=10_000, max_uncompressed_bytes=16 * 1024**2)


class FuzzFailure(AssertionError):
    """A server error or a malformed error answer."""


def _mixed_csv() -> bytes:
    import numpy as np
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.head(80).copy()
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")
    frame["smoker"] = frame.index % 3 == 0
    frame["visits"] = frame.index % 7
    return frame.to_csv(index=False).encode()


class Site:
    """One app with model ``mixed`` and an admin key, built once."""

    def __init__(self) -> None:
        home = Path(tempfile.mkdtemp(prefix="mlserve-fuzz-")) / "home"
        self.app = create_app(
            Settings(
                home=home,
                jobs_immediate=True,
                log_level="CRITICAL",
                max_batch_rows=200,
                rate_limit_per_key="off",  # two requests per input, thousands a second
                rate_limit_per_ip="off",
            )
        )
        self.client = self.app.test_client()
        key = auth.create_key(context_of(self.app), "admin", name="fuzz").secret
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        data = {"file": (io.BytesIO(_mixed_csv()), "mixed.csv")}
        dataset = self.client.post("/api/v1/datasets", data=data).get_json()
        spec = {"dataset_id": dataset["id"], "target": "target", "algorithm": "ridge"}
        job = self.client.post(
            "/api/v1/training-jobs", json={**spec, "model_name": "mixed", "cv_folds": 0}
        ).get_json()
        assert job["status"] == "succeeded", job
        self.app.wsgi_app.typed_min_bytes = 0  # type: ignore[attr-defined]

    def check(self, response: Any) -> None:
        if response.status_code >= 500:
            raise FuzzFailure(f"{response.status_code}: {response.get_data()[:300]!r}")
        if response.status_code >= 400:
            body = response.get_json(silent=True)
            if response.mimetype != "application/json" or set(body or {}) != {"error"}:
                raise FuzzFailure(f"not the error envelope: {response.get_data()[:300]!r}")


def upload_target(data: bytes) -> None:
    for name in ("data.csv", "data.parquet"):
        with contextlib.suppress(MlserveError):
            parse_upload(name, data, LIMITS.max_columns, LIMITS)


def _predict_target(site: Site) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        url = "/api/v1/models/mixed/predict"
        response = site.client.post(url, data=data, content_type="application/json")
        site.check(response)
        flask = site.client.post(url, data=data, content_type="application/json; charset=utf-8")
        if response.status_code != flask.status_code or (
            response.status_code >= 400 and response.get_data() != flask.get_data()
        ):
            raise FuzzFailure(
                f"fast lane {response.status_code} {response.get_data()[:200]!r} against "
                f"Flask {flask.status_code} {flask.get_data()[:200]!r}"
            )

    return target


def _csv_target(site: Site) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        response = site.client.post(
            "/api/v1/models/mixed/predict/csv",
            data={"file": (io.BytesIO(data), "x.csv")},
            content_type="multipart/form-data",
        )
        site.check(response)

    return target


def _v2_binary_target(site: Site) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        claimed = int.from_bytes(data[:4].ljust(4, b"\0"), "little")
        response = site.client.post(
            "/v2/models/mixed/infer",
            data=data[4:],
            headers={"Inference-Header-Content-Length": str(claimed)},
            content_type="application/octet-stream",
        )
        site.check(response)

    return target


def v2_binary_seeds(site: Site) -> list[bytes]:
    """Valid binary-extension requests for ``mixed``, one and three rows, every input as
    raw bytes (BYTES: 4-byte little-endian length before each value)."""
    import numpy as np

    inputs = site.client.get("/v2/models/mixed").get_json()["inputs"]
    made = []
    for rows in (1, 3):
        header: list[dict[str, Any]] = []
        raw = b""
        for spec in inputs:
            if spec["datatype"] == "BYTES":
                values = [b"male", b"female", b"male"][:rows]
                tensor = b"".join(len(v).to_bytes(4, "little") + v for v in values)
            elif spec["datatype"] == "BOOL":
                tensor = np.array([True, False, True][:rows]).tobytes()
            elif spec["datatype"].startswith("INT"):
                tensor = np.arange(rows, dtype=spec["datatype"].lower()).tobytes()
            else:
                dtype = "<f4" if spec["datatype"] == "FP32" else "<f8"
                tensor = np.linspace(-0.05, 0.05, rows).astype(dtype).tobytes()
            header.append(
                {
                    "name": spec["name"],
                    "datatype": spec["datatype"],
                    "shape": [rows],
                    "parameters": {"binary_data_size": len(tensor)},
                }
            )
            raw += tensor
        head = json.dumps({"inputs": header, "parameters": {"binary_data_output": True}}).encode()
        made.append(len(head).to_bytes(4, "little") + head + raw)
    return made


def seeds(name: str) -> list[bytes]:
    """Valid inputs for the target ``name`` (libFuzzer mutates from these)."""
    csv = _mixed_csv()
    header, *lines = csv.decode().splitlines()
    names = header.split(",")
    rows = [dict(zip(names, line.split(","), strict=True)) for line in lines[:3]]
    for row in rows:
        row.pop("target")
        for key, value in row.items():
            if key not in ("sex", "smoker"):
                row[key] = float(value)  # type: ignore[assignment]
        row["smoker"] = row["smoker"] == "True"  # type: ignore[assignment]
    if name == "upload":
        import pandas as pd

        buffer = io.BytesIO()
        pd.read_csv(io.BytesIO(csv)).head(20).to_parquet(buffer)
        return [csv[:2000], buffer.getvalue(), b"a,b\n1,2\n"]
    if name == "predict-records":
        return [
            json.dumps({"instances": rows}).encode(),
            json.dumps({"instances": rows[:1]}).encode(),
        ]
    if name == "predict-columnar":
        columns = {k: [r[k] for r in rows] for k in rows[0]}
        return [json.dumps({"inputs": columns}).encode()]
    return ["\n".join([header, *lines[:5]]).encode()]


TARGETS = ("upload", "predict-records", "predict-columnar", "predict-csv", "predict-v2-binary")


def main(argv: list[str]) -> None:
    name = argv[1] if len(argv) > 1 else ""
    if name not in TARGETS:
        raise SystemExit(f"usage: python -m fuzz.targets {{{','.join(TARGETS)}}} [libFuzzer flags]")
    corpus = Path(tempfile.mkdtemp(prefix=f"mlserve-fuzz-{name}-"))
    if name == "upload":
        target, found = upload_target, seeds(name)
    elif name == "predict-v2-binary":
        site = Site()
        target, found = _v2_binary_target(site), v2_binary_seeds(site)
    else:
        site = Site()
        target = _csv_target(site) if name == "predict-csv" else _predict_target(site)
        found = seeds(name)
    for index, seed in enumerate(found):
        (corpus / f"seed-{index}").write_bytes(seed)
    atheris.Setup([argv[0], *argv[2:], str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
