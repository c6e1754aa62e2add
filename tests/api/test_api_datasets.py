"""HTTP contract of /api/v1/datasets: upload, list, get, and every way an upload is refused.

Also home of :func:`stored_state`, the snapshot of everything mlserve persists that the
other ``test_api_*`` modules use to prove a refused request changed nothing.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.settings import Settings
from mlserve.store.orm import Dataset, ModelAlias, ModelVersion, RegisteredModel, TrainingJob
from tests.conftest import CALIFORNIA_TARGET, frame_csv, keyed_client, upload

# --------------------------------------------------------------------------- helpers


def stored_state(ctx: Context) -> dict[str, Any]:
    """Row counts of every table, the aliases, and every file in the artifact store.

    Files are listed with their sha256, so a rewritten file shows up as a change.
    """
    counts: dict[str, Any] = {}
    with ctx.db.session() as session:
        for table in (Dataset, TrainingJob, RegisteredModel, ModelVersion, ModelAlias):
            counts[table.__tablename__] = session.scalar(select(func.count()).select_from(table))
        counts["aliases"] = sorted(
            (row.model_name, row.alias, row.version) for row in session.scalars(select(ModelAlias))
        )
    root = Path(ctx.store.root)
    counts["files"] = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    return counts


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Check the status and the ``{"error": {"code", "message", "details"}}`` envelope."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    details: dict[str, Any] = error["details"]
    return {"message": error["message"], **details}


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def expected_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        return "number"
    return "string"


SMALL_CSV = b"x,y,label\n1,2.5,a\n2,,b\n3,4.5,a\n"


# --------------------------------------------------------------------------- california


@pytest.fixture(scope="module")
def california(
    tmp_path_factory: pytest.TempPathFactory, california_bytes: bytes
) -> Iterator[dict[str, Any]]:
    """One upload of california_housing.csv for the whole module (own app and home)."""
    home = tmp_path_factory.mktemp("california") / "home"
    application: Flask = create_app(Settings(home=home, jobs_immediate=True, log_level="WARNING"))
    client = keyed_client(application)
    response = upload(client, california_bytes, "california_housing.csv")
    body = response.get_json()
    yield {
        "status": response.status_code,
        "body": body,
        "listing": client.get("/api/v1/datasets").get_json(),
        "one": client.get(f"/api/v1/datasets/{body['id']}").get_json(),
        "preview": client.get(f"/api/v1/datasets/{body['id']}/preview").get_json(),
    }
    context_of(application).db.dispose()


def _column(body: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [c for c in body["columns"] if c["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def test_upload_california_returns_201_with_shape(
    california: dict[str, Any], california_frame: pd.DataFrame
) -> None:
    body = california["body"]
    assert california["status"] == 201
    assert body["n_rows"] == 20640 == len(california_frame)
    assert body["n_columns"] == 10
    assert [c["name"] for c in body["columns"]] == list(california_frame.columns)
    assert body["source_format"] == "csv"
    assert body["name"] == body["filename"] == "california_housing.csv"
    assert re.fullmatch(r"[0-9a-f]{64}", body["sha256"])
    assert body["size_bytes"] > 0


def test_upload_california_total_bedrooms_missing_is_207(california: dict[str, Any]) -> None:
    column = _column(california["body"], "total_bedrooms")
    assert column["missing"] == 207
    assert column["type"] == "number"
    for other in california["body"]["columns"]:
        if other["name"] != "total_bedrooms":
            assert other["missing"] == 0, other["name"]


def test_upload_california_ocean_proximity_top_counts(
    california: dict[str, Any], california_frame: pd.DataFrame
) -> None:
    column = _column(california["body"], "ocean_proximity")
    assert column["type"] == "string"
    assert column["unique"] == 5
    assert "min" not in column and "mean" not in column
    counts = california_frame["ocean_proximity"].value_counts()
    assert column["top"] == [{"value": str(v), "count": int(c)} for v, c in counts.items()]
    assert column["top"][0] == {"value": "<1H OCEAN", "count": 9136}
    assert sum(t["count"] for t in column["top"]) == 20640 - column["missing"]


def test_upload_california_median_income_stats_match_pandas(
    california: dict[str, Any], california_frame: pd.DataFrame
) -> None:
    column = _column(california["body"], "median_income")
    income = california_frame["median_income"]
    assert column["min"] == pytest.approx(income.min(), rel=1e-12)
    assert column["max"] == pytest.approx(income.max(), rel=1e-12)
    assert column["mean"] == pytest.approx(income.mean(), rel=1e-12)
    assert column["std"] == pytest.approx(income.std(ddof=1), rel=1e-12)
    assert column["min"] == pytest.approx(0.4999)
    assert column["max"] == pytest.approx(15.0001)


def test_upload_california_every_column_matches_pandas(
    california: dict[str, Any], california_frame: pd.DataFrame
) -> None:
    for name in california_frame.columns:
        series = california_frame[name]
        column = _column(california["body"], name)
        assert column["type"] == expected_type(series), name
        assert column["missing"] == int(series.isna().sum()), name
        assert column["unique"] == int(series.nunique()), name
        if column["type"] == "number":
            present = series.dropna()
            assert column["min"] == pytest.approx(present.min(), rel=1e-12), name
            assert column["max"] == pytest.approx(present.max(), rel=1e-12), name
            assert column["mean"] == pytest.approx(present.mean(), rel=1e-12), name
            assert column["std"] == pytest.approx(present.std(), rel=1e-12), name
            counts, edges = np.histogram(present, bins=column["histogram"]["edges"])
            assert column["histogram"]["counts"] == counts.tolist(), name
            assert sum(column["histogram"]["counts"]) == len(present), name
            assert 1 <= len(counts) <= 20, name
            assert (edges[0], edges[-1]) == (present.min(), present.max()), name
        else:
            assert "histogram" not in column, name
    target = _column(california["body"], CALIFORNIA_TARGET)
    assert target["max"] == pytest.approx(500001.0)


def test_get_dataset_california_equals_upload_response(california: dict[str, Any]) -> None:
    assert california["one"] == california["body"]


def test_list_datasets_california_is_listed(california: dict[str, Any]) -> None:
    uploaded = {k: v for k, v in california["body"].items() if k != "same_content_as"}
    assert california["listing"] == {"datasets": [uploaded]}  # the hint is per dataset only


def test_preview_california_is_its_first_twenty_rows(
    california: dict[str, Any], california_frame: pd.DataFrame
) -> None:
    preview = california["preview"]
    assert preview["columns"] == list(california_frame.columns)
    assert preview["n_rows"] == 20640
    head = california_frame.head(20).astype(object)
    expected = head.where(head.notna(), None).to_numpy().tolist()
    assert preview["rows"] == expected
    assert preview["rows"][0][:2] == [-122.23, 37.88]


# --------------------------------------------------------------------------- small uploads


def test_upload_small_csv_reports_types_and_statistics(client: FlaskClient) -> None:
    response = upload(client, SMALL_CSV, "small.csv")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["n_rows"], body["n_columns"]) == (3, 3)
    x, y, label = body["columns"]
    counts, edges = np.histogram([1.0, 2.0, 3.0], bins="auto")
    assert x == {
        "name": "x",
        "type": "integer",
        "dtype": "int64",
        "missing": 0,
        "unique": 3,
        "min": 1.0,
        "max": 3.0,
        "mean": 2.0,
        "std": 1.0,
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "role": "feature",  # 3 rows: too few to call a unique integer column an id
        "role_reason": "",
    }
    assert y["type"] == "number" and y["missing"] == 1 and y["unique"] == 2
    assert (y["min"], y["max"], y["mean"]) == (2.5, 4.5, 3.5)
    assert y["std"] == pytest.approx(math.sqrt(2.0))
    assert label["type"] == "string" and label["unique"] == 2
    assert label["top"] == [{"value": "a", "count": 2}, {"value": "b", "count": 1}]


def test_upload_stores_parquet_matching_sha256_and_size(client: FlaskClient, ctx: Context) -> None:
    body = upload(client, SMALL_CSV, "small.csv").get_json()
    path = Path(ctx.store.root) / "datasets" / f"{body['id']}.parquet"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == body["sha256"]
    assert len(data) == body["size_bytes"]
    stored = pd.read_parquet(io.BytesIO(data))
    assert stored["x"].tolist() == [1, 2, 3]
    assert stored["label"].tolist() == ["a", "b", "a"]


@pytest.mark.parametrize(
    ("form_name", "expected"),
    [(None, "small.csv"), ("my data", "my data"), ("  padded  ", "padded")],
)
def test_upload_name_defaults_to_filename(
    client: FlaskClient, form_name: str | None, expected: str
) -> None:
    response = upload(client, SMALL_CSV, "small.csv", name=form_name)
    assert response.status_code == 201
    assert response.get_json()["name"] == expected
    assert response.get_json()["filename"] == "small.csv"


def test_upload_real_parquet_returns_201(client: FlaskClient) -> None:
    table = pa.table(
        {
            "count": pa.array([1, 2, 3, 4], type=pa.int64()),
            "ratio": pa.array([0.5, None, 1.5, 2.5], type=pa.float64()),
            "flag": pa.array([True, False, True, True]),
            "colour": pa.array(["red", "blue", None, "red"]),
        }
    )
    response = upload(client, parquet_bytes(table), "data.parquet")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["source_format"] == "parquet"
    assert (body["n_rows"], body["n_columns"]) == (4, 4)
    types = {c["name"]: (c["type"], c["missing"], c["unique"]) for c in body["columns"]}
    assert types == {
        "count": ("integer", 0, 4),
        "ratio": ("number", 1, 3),
        "flag": ("boolean", 0, 2),
        "colour": ("string", 1, 2),
    }
    assert _column(body, "ratio")["mean"] == pytest.approx(1.5)
    assert _column(body, "colour")["top"] == [
        {"value": "red", "count": 2},
        {"value": "blue", "count": 1},
    ]


def test_upload_parquet_magic_wins_over_csv_name(client: FlaskClient) -> None:
    data = parquet_bytes(pa.table({"a": [1, 2]}))
    response = upload(client, data, "misnamed.csv")
    assert response.status_code == 201
    assert response.get_json()["source_format"] == "parquet"


def test_list_datasets_newest_first_with_paging(client: FlaskClient) -> None:
    ids = [upload(client, SMALL_CSV, f"f{i}.csv").get_json()["id"] for i in range(3)]
    listed = client.get("/api/v1/datasets").get_json()["datasets"]
    assert [d["id"] for d in listed] == ids[::-1]
    page = client.get("/api/v1/datasets?limit=1&offset=1").get_json()["datasets"]
    assert [d["id"] for d in page] == [ids[1]]
    assert client.get("/api/v1/datasets?offset=3").get_json() == {"datasets": []}


def test_get_dataset_returns_the_upload(client: FlaskClient) -> None:
    body = upload(client, SMALL_CSV, "small.csv").get_json()
    response = client.get(f"/api/v1/datasets/{body['id']}")
    assert response.status_code == 200
    assert response.get_json() == body


# --------------------------------------------------------------------------- refusals


def test_get_dataset_unknown_id_returns_404(client: FlaskClient) -> None:
    details = assert_error(client.get("/api/v1/datasets/nope"), 404, "not_found")
    assert details["resource"] == "dataset" and details["key"] == "nope"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_list_datasets_bad_page_returns_422(client: FlaskClient, query: str, field: str) -> None:
    details = assert_error(client.get(f"/api/v1/datasets?{query}"), 422, "validation_error")
    assert details["field"] == field


BAD_UPLOADS = [
    # (case id, bytes, filename, status, code, message pattern, expected details subset)
    (
        "binary-garbage",
        bytes(range(256)) * 10,
        "data.csv",
        415,
        "unsupported_media_type",
        "neither CSV",
        {"field": "file"},
    ),
    ("empty", b"", "data.csv", 422, "validation_error", "empty", {"field": "file"}),
    ("whitespace-only", b"  \n\n", "data.csv", 422, "validation_error", "empty", {"field": "file"}),
    (
        "header-only",
        b"a,b,c\n",
        "data.csv",
        422,
        "validation_error",
        "no data rows",
        {"field": "file"},
    ),
    (
        "ragged",
        b"a,b\n1,2\n3,4\n5\n6,7\n",
        "data.csv",
        422,
        "validation_error",
        r"line 4\b",
        {"field": "file", "line": 4, "expected": 2, "found": 1},
    ),
    (
        "ragged-long-row",
        b"a,b\n1,2,3\n",
        "data.csv",
        422,
        "validation_error",
        r"line 2\b",
        {"line": 2, "found": 3},
    ),
    (
        "duplicate-columns",
        b"a,b,a\n1,2,3\n",
        "data.csv",
        422,
        "validation_error",
        "duplicate column name 'a'",
        {"field": "file", "column": "a"},
    ),
    (
        "empty-column-name",
        b"a,,c\n1,2,3\n",
        "data.csv",
        422,
        "validation_error",
        "column 2 has an empty name",
        {"column": 2},
    ),
    (
        "unterminated-quote",
        b'a,b\n1,"open\n',
        "data.csv",
        422,
        "validation_error",
        "could not be parsed",
        {"field": "file"},
    ),
    (
        "csv-named-parquet",
        b"a,b\n1,2\n",
        "data.parquet",
        415,
        "unsupported_media_type",
        "named .parquet",
        {"field": "file"},
    ),
    (
        "truncated-parquet",
        b"PAR1" + b"\x00" * 64,
        "data.parquet",
        415,
        "unsupported_media_type",
        "not a readable Parquet",
        {"field": "file"},
    ),
]


@pytest.mark.parametrize(
    ("data", "filename", "status", "code", "pattern", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_UPLOADS],
)
def test_upload_bad_file_is_refused_without_storing(
    client: FlaskClient,
    ctx: Context,
    data: bytes,
    filename: str,
    status: int,
    code: str,
    pattern: str,
    expected: dict[str, Any],
) -> None:
    upload(client, SMALL_CSV, "kept.csv")
    before = stored_state(ctx)
    details = assert_error(upload(client, data, filename), status, code)
    assert re.search(pattern, details["message"]), details["message"]
    assert {k: details.get(k) for k in expected} == expected
    assert stored_state(ctx) == before


def test_upload_without_file_field_returns_422(client: FlaskClient, ctx: Context) -> None:
    before = stored_state(ctx)
    response = client.post(
        "/api/v1/datasets", data={"name": "no file"}, content_type="multipart/form-data"
    )
    details = assert_error(response, 422, "validation_error")
    assert details["field"] == "file"
    assert stored_state(ctx) == before


def test_upload_file_under_other_field_name_returns_422(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/datasets",
        data={"upload": (io.BytesIO(SMALL_CSV), "small.csv")},
        content_type="multipart/form-data",
    )
    assert assert_error(response, 422, "validation_error")["field"] == "file"


@pytest.fixture
def limited_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """An app with a 4 KiB body limit and at most 3 columns per dataset."""
    application = create_app(
        settings.model_copy(
            update={
                "home": tmp_path / "limited",
                "max_content_length_bytes": 4096,
                "max_dataset_columns": 3,
            }
        )
    )
    yield application
    context_of(application).db.dispose()


def test_upload_over_content_length_returns_413(limited_app: Flask) -> None:
    client = keyed_client(limited_app)
    ctx: Context = context_of(limited_app)
    rows = "\n".join(f"{i},{i * 2}" for i in range(1000))
    big = f"a,b\n{rows}\n".encode()
    assert len(big) > 4096
    before = stored_state(ctx)
    assert_error(upload(client, big, "big.csv"), 413, "payload_too_large")
    assert stored_state(ctx) == before
    assert upload(client, b"a,b\n1,2\n", "small.csv").status_code == 201


def test_upload_too_many_columns_returns_422(limited_app: Flask) -> None:
    client = keyed_client(limited_app)
    details = assert_error(
        upload(client, b"a,b,c,d\n1,2,3,4\n", "wide.csv"), 422, "validation_error"
    )
    assert (details["columns"], details["limit"]) == (4, 3)
    assert upload(client, b"a,b,c\n1,2,3\n", "ok.csv").status_code == 201


def test_upload_diabetes_frame_round_trips_numbers(
    client: FlaskClient, diabetes_frame: pd.DataFrame
) -> None:
    body = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    assert (body["n_rows"], body["n_columns"]) == (442, 11)
    bmi = _column(body, "bmi")
    assert bmi["mean"] == pytest.approx(float(np.mean(diabetes_frame["bmi"])), abs=1e-15)
    assert bmi["unique"] == diabetes_frame["bmi"].nunique()


@pytest.mark.parametrize(
    ("filename", "name", "field"),
    [
        ("small.csv", "bad\x00name", "name"),
        ("small.csv", "tab\tname", "name"),
        ("small.csv", "bell\x07", "name"),
        ("sm\x00all.csv", None, "file"),
        ("esc\x1bape.csv", None, "file"),
    ],
    ids=["nul-in-name", "tab-in-name", "bell-in-name", "nul-in-filename", "escape-in-filename"],
)
def test_upload_control_characters_in_names_return_422(
    client: FlaskClient, ctx: Context, filename: str, name: str | None, field: str
) -> None:
    before = stored_state(ctx)
    response = upload(client, SMALL_CSV, filename, name)
    details = assert_error(response, 422, "validation_error")
    assert details["field"] == field
    assert "control characters" in response.get_json()["error"]["message"]
    assert stored_state(ctx) == before


# --------------------------------------------------------------------------- preview


def preview(client: FlaskClient, dataset_id: str, query: str = "") -> Any:
    return client.get(f"/api/v1/datasets/{dataset_id}/preview{query}")


def test_preview_small_csv_default_returns_every_row(client: FlaskClient) -> None:
    body = upload(client, SMALL_CSV, "small.csv").get_json()
    response = preview(client, body["id"])
    assert response.status_code == 200
    assert response.get_json() == {
        "columns": ["x", "y", "label"],
        "rows": [[1, 2.5, "a"], [2, None, "b"], [3, 4.5, "a"]],
        "n_rows": 3,
    }


def test_preview_returns_only_the_rows_asked(client: FlaskClient) -> None:
    rows = "\n".join(f"{i},{i * 0.5}" for i in range(250))
    body = upload(client, f"n,half\n{rows}\n".encode(), "long.csv").get_json()
    for wanted in (1, 7, 100):
        got = preview(client, body["id"], f"?rows={wanted}").get_json()
        assert got["rows"] == [[i, i * 0.5] for i in range(wanted)]
        assert got["n_rows"] == 250


def test_preview_of_parquet_keeps_types_and_writes_timestamps_as_text(client: FlaskClient) -> None:
    table = pa.table(
        {
            "flag": pa.array([True, None, False]),
            "ratio": pa.array([0.25, float("nan"), None], type=pa.float64()),
            "at": pa.array([0, 86_400_000_000, None], type=pa.timestamp("us")),
        }
    )
    body = upload(client, parquet_bytes(table), "typed.parquet").get_json()
    got = preview(client, body["id"], "?rows=3").get_json()
    assert got["columns"] == ["flag", "ratio", "at"]
    assert got["rows"] == [
        [True, 0.25, "1970-01-01 00:00:00"],
        [None, None, "1970-01-02 00:00:00"],
        [False, None, None],
    ]


@pytest.mark.parametrize(
    "query",
    ["?rows=0", "?rows=101", "?rows=abc", "?rows=-1", "?rows=1.5", "?rows="],
    ids=["zero", "over-100", "text", "negative", "fraction", "empty"],
)
def test_preview_bad_rows_returns_422_naming_rows(client: FlaskClient, query: str) -> None:
    body = upload(client, SMALL_CSV, "small.csv").get_json()
    details = assert_error(preview(client, body["id"], query), 422, "validation_error")
    assert details["field"] == "rows"


def test_preview_unknown_dataset_returns_404(client: FlaskClient) -> None:
    details = assert_error(preview(client, "nope"), 404, "not_found")
    assert (details["resource"], details["key"]) == ("dataset", "nope")


def test_preview_of_a_tampered_file_returns_409(client: FlaskClient, ctx: Context) -> None:
    body = upload(client, SMALL_CSV, "small.csv").get_json()
    path = Path(ctx.store.root) / "datasets" / f"{body['id']}.parquet"
    path.write_bytes(parquet_bytes(pa.table({"x": [9]})))
    assert_error(preview(client, body["id"]), 409, "conflict")


def test_the_same_table_uploaded_again_says_so(
    client: FlaskClient, diabetes_frame: pd.DataFrame
) -> None:
    """Three uploads of one file: three datasets (either may be used), each naming the
    others with the same stored sha256, oldest first; another table names none."""
    data = frame_csv(diabetes_frame)
    first, second, third = (upload(client, data, "d.csv").get_json() for _ in range(3))
    assert first["same_content_as"] == []
    assert second["same_content_as"] == [first["id"]]
    assert third["same_content_as"] == [first["id"], second["id"]]
    again = client.get(f"/api/v1/datasets/{first['id']}").get_json()
    assert again["same_content_as"] == [second["id"], third["id"]]
    assert len({first["sha256"], second["sha256"], third["sha256"]}) == 1
    other = upload(client, frame_csv(diabetes_frame.head(10)), "d.csv").get_json()
    assert other["same_content_as"] == []
