"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

schemathesis loads ``/openapi.json`` from the Flask app in WSGI mode (requests go
straight into the app, no socket) and generates requests for every operation:
schema-valid ones (positive) and schema-breaking ones (negative), with generated
path parameters and with real ones (model ``diabetes``, its version 1 and alias
``production``, its dataset and job, a key prefix), once with an admin key and once
with no key at all. Every answer must pass:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the documented content type;
- ``response_schema_conformance``: the body matches the documented schema;
- ``negative_data_rejection``: a schema-breaking request is not answered 2xx.

Checks left out, and why: ``positive_data_acceptance`` (a schema-valid upload of
random bytes is still no CSV, and a schema-valid training spec names random columns:
their 4xx are right); ``ignored_auth`` (it replays each request without its key:
:func:`test_fuzz` already runs every operation without a key).

Generation is bounded and reproducible (``derandomize``: the same examples on every
run, no example database), so the module takes well under a minute.

Known problems found here are not skipped silently: each has a minimal reproduction
below, marked ``xfail(strict=True)`` with the src location, and :func:`_known_problem`
recognises exactly that answer (status, error code and the input that causes it) so
that the fuzzer keeps looking for other problems in the same operation. When a problem is fixed, its
reproduction XPASSes (a failure under ``strict``): delete the test's mark and the
matching branch of :func:`_known_problem`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sklearn.datasets import load_diabetes

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.security import keys as auth
from mlserve.settings import Settings
from tests.conftest import frame_csv, keyed_client, train, upload

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
MAX_EXAMPLES = 30
SEED = 20_260_611
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

# Every operation of /openapi.json (test_operations_match_the_document keeps this in step).
OPERATIONS = [
    "GET /health",
    "GET /ready",
    "GET /api/v1/datasets",
    "POST /api/v1/datasets",
    "GET /api/v1/datasets/{dataset_id}",
    "GET /api/v1/datasets/{dataset_id}/preview",
    "GET /api/v1/algorithms",
    "GET /api/v1/training-jobs",
    "POST /api/v1/training-jobs",
    "GET /api/v1/training-jobs/{job_id}",
    "POST /api/v1/training-jobs/{job_id}/cancel",
    "GET /api/v1/models",
    "GET /api/v1/models/{name}",
    "GET /api/v1/models/{name}/versions",
    "GET /api/v1/models/{name}/versions/{version}",
    "GET /api/v1/models/{name}/versions/{version}/evaluation",
    "PUT /api/v1/models/{name}/aliases/{alias}",
    "DELETE /api/v1/models/{name}/aliases/{alias}",
    "GET /api/v1/models/{name}/aliases/{alias}",
    "GET /api/v1/models/{name}/aliases/{alias}/comparison",
    "POST /api/v1/models/{name}/aliases/{alias}/promote",
    "POST /api/v1/models/{name}/predict",
    "POST /api/v1/models/{name}/explain",
    "POST /v1/models/{name}:predict",
    "GET /v1/models/{name}",
    "POST /api/v1/models/{name}/predict/csv",
    "POST /api/v1/models/{name}/samples",
    "GET /api/v1/models/{name}/online",
    "POST /api/v1/models/{name}/online-update",
    "POST /api/v1/models/{name}/retrain",
    "POST /api/v1/predictions/{prediction_id}/feedback",
    "GET /api/v1/models/{name}/versions/{version}/live-metrics",
    "GET /api/v1/models/{name}/versions/{version}/drift",
    "GET /metrics",
    "GET /api/v1/keys",
    "POST /api/v1/keys",
    "DELETE /api/v1/keys/{prefix}",
    "GET /api/v1/audit",
    "POST /api/v1/models/{name}/versions",
    "GET /v2",
    "GET /v2/health/live",
    "GET /v2/health/ready",
    "GET /v2/models/{name}",
    "GET /v2/models/{name}/versions/{version}",
    "GET /v2/models/{name}/ready",
    "GET /v2/models/{name}/versions/{version}/ready",
    "POST /v2/models/{name}/infer",
    "POST /v2/models/{name}/versions/{version}/infer",
]
JSON_BODY_OPERATIONS = [
    "POST /api/v1/training-jobs",
    "PUT /api/v1/models/{name}/aliases/{alias}",
    "POST /api/v1/models/{name}/predict",
    "POST /v1/models/{name}:predict",
    "POST /api/v1/models/{name}/samples",
    "POST /api/v1/predictions/{prediction_id}/feedback",
    "POST /api/v1/keys",
]
SQL_BIGINT_MAX = 2**63 - 1
SQL_INTEGER_MAX = 2**31 - 1  # the version columns are INTEGER (int32 on PostgreSQL)
ALL = frozenset({"sqlite", "postgresql"})
PG = frozenset({"postgresql"})
NONE: frozenset[str] = frozenset()
ALIAS_URL = "/api/v1/models/diabetes/aliases/big"


# --------------------------------------------------------------------------- the fuzzed app


@dataclass
class FuzzWorld:
    app: Flask
    schema: Any  # schemathesis.specs.openapi.schemas.OpenApiSchema
    document: dict[str, Any]
    admin_key: str
    real: dict[str, Any]  # path parameter -> a value that exists
    features: list[dict[str, Any]]  # the signature inputs of diabetes v1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzWorld]:
    """One app for the module, with a trained model so that real names exist.

    Rate limits are off: after 60 requests without a key in a minute every answer
    would be 429 and the handlers under test would no longer be reached.
    """
    home = tmp_path_factory.mktemp("fuzz") / "home"
    app = create_app(
        Settings(
            home=home,
            jobs_immediate=True,
            log_level="CRITICAL",
            rate_limit_per_key="off",
            rate_limit_per_ip="off",
            rate_limit_auth_failures_per_ip="off",
            prediction_log_sample_rate=1.0,
        )
    )
    client = keyed_client(app)
    dataset = upload(client, frame_csv(load_diabetes(as_frame=True).frame), "diabetes.csv")
    dataset_id = dataset.get_json()["id"]
    job = train(
        client, dataset_id, target="target", algorithm="ridge", model_name="diabetes", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    aliased = client.put("/api/v1/models/diabetes/aliases/production", json={"version": 1})
    assert aliased.status_code == 200
    predicted = client.post(
        "/api/v1/models/diabetes/predict",
        json={"instances": load_diabetes(as_frame=True).data.head(2).to_dict("records")},
    ).get_json()
    assert context_of(app).prediction_log.flush()
    # A key the fuzzer may revoke: never the admin key it sends.
    victim = auth.create_key(context_of(app), "viewer", name="fuzz-victim")
    config = schemathesis.Config.from_dict(
        {"seed": SEED, "generation": {"with-security-parameters": False}}
    )
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)
    yield FuzzWorld(
        app=app,
        schema=schema,
        document=client.get("/openapi.json").get_json(),
        admin_key=app.extensions["test_keys"]["admin"],
        real={
            "name": "diabetes",
            "version": 1,
            "alias": "production",
            "dataset_id": dataset_id,
            "job_id": job["id"],
            "prefix": victim.row.prefix,
            "prediction_id": predicted["prediction_id"],
        },
        features=client.get("/api/v1/models/diabetes/versions/1").get_json()["signature"]["inputs"],
    )
    context_of(app).db.dispose()


def _operation(world: FuzzWorld, label: str) -> Any:
    method, path = label.split(" ", 1)
    return world.schema[path][method]


def _documented(world: FuzzWorld, label: str) -> set[str]:
    method, path = label.split(" ", 1)
    return set(world.document["paths"][path][method.lower()]["responses"])


def _strategy(world: FuzzWorld, label: str) -> st.SearchStrategy[Case]:
    """Positive and negative cases, half of them aimed at objects that exist."""
    operation = _operation(world, label)
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    names = [parameter.name for parameter in operation.path_parameters]
    if names:
        real = {name: world.real[name] for name in names}
        strategies += [operation.as_strategy(mode, path_parameters=real) for mode in modes]
    if label == "POST /api/v1/training-jobs":
        dataset_id = world.real["dataset_id"]
        strategies.append(strategies[0].map(_with_body_field("dataset_id", dataset_id)))
    if label.endswith("predict"):  # rows the model accepts, so that predictions come back
        real_name = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real)
        strategies.append(st.tuples(real_name, _predict_body(world.features)).map(_with_body))
    if label.endswith("predict/csv"):  # files the model accepts, so that CSV comes back
        real_name = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real)
        any_name = operation.as_strategy(GenerationMode.POSITIVE)
        csv_files = _predict_body(world.features).map(_as_csv_upload)
        strategies.append(st.tuples(real_name, csv_files).map(_with_upload))
        # the same files for names that do not exist: the file is read before the name is
        # looked up, so only a readable file reaches the 404
        strategies.append(st.tuples(any_name, csv_files).map(_with_upload))
    return st.one_of(strategies)


def _as_csv_upload(body: dict[str, Any]) -> str:
    """The rows of a predict body as CSV text (missing values as empty cells); text, not
    bytes, so that schemathesis still sees a body valid for the ``binary`` file field."""
    rows = body.get("instances") or [
        dict(zip(body["inputs"], values, strict=True))
        for values in zip(*body["inputs"].values(), strict=True)
    ]
    text = "\n".join(",".join("" if v is None else repr(v) for v in row.values()) for row in rows)
    return f"{','.join(rows[0])}\n{text}\n"  # fmt: skip


def _with_upload(pair: tuple[Case, str]) -> Case:
    case, data = pair
    case.body = {"file": data}
    case.media_type = "multipart/form-data"
    return case


def _predict_body(features: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """``{"instances": [...]}`` or ``{"inputs": {...}}`` of valid (numeric) rows."""
    value = st.floats(allow_nan=False, allow_infinity=False)
    row = st.fixed_dictionaries(
        {f["name"]: (value | st.none()) if f["nullable"] else value for f in features}
    )
    rows = st.lists(row, min_size=1, max_size=5)
    return rows.flatmap(
        lambda rs: st.sampled_from(
            [
                {"instances": rs},
                {"inputs": {f["name"]: [r[f["name"]] for r in rs] for f in features}},
            ]
        )
    )


def _with_body(pair: tuple[Case, dict[str, Any]]) -> Case:
    case, body = pair
    case.body = body
    case.media_type = "application/json"
    return case


def _with_body_field(field: str, value: Any) -> Callable[[Case], Case]:
    def replace(case: Case) -> Case:
        if isinstance(case.body, dict) and field in case.body:
            case.body = {**case.body, field: value}
        return case

    return replace


# --------------------------------------------------------------------------- known problems


def _error_code(content: bytes) -> str | None:
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return None
    error = body["error"]
    if set(error) != {"code", "message", "details"}:
        return None
    return error["code"] if isinstance(error["code"], str) else None


def _beyond(value: Any, limit: int) -> bool:
    """Whether ``value`` (as sent in a query, path or body) is a whole number > ``limit``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > limit
    if isinstance(value, float):
        return math.isfinite(value) and value > limit
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text) > limit
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return False
        return math.isfinite(number) and number > limit and number.is_integer()
    if isinstance(value, list):
        return any(_beyond(v, limit) for v in value)
    return False


def _known_problem(world: FuzzWorld, label: str, case: Case, status: int, content: bytes) -> str:
    """Name of the known problem this answer shows, or ``""``."""
    documented = _documented(world, label)
    code = _error_code(content)
    if (
        label in JSON_BODY_OPERATIONS
        and str(status) not in documented
        and (status, code) in {(400, "malformed_json"), (415, "unsupported_media_type")}
    ):
        return "undocumented-400-415"  # test_json_body_errors_are_documented
    if status == 500 and code == "internal_error":
        query, path = case.query or {}, case.path_parameters or {}
        body = case.body if isinstance(case.body, dict) else {}
        if (
            _beyond(query.get("offset"), SQL_BIGINT_MAX)
            or _beyond(path.get("version"), SQL_INTEGER_MAX)
            or _beyond(body.get("version"), SQL_INTEGER_MAX)
        ):
            return "sql-integer-overflow-500"  # test_integer_beyond_the_sql_column_is_not_a_500
    return ""


# --------------------------------------------------------------------------- the fuzzing


def test_operations_match_the_document(world: FuzzWorld) -> None:
    listed = {
        f"{method.upper()} {path}"
        for path, item in world.document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert listed == set(OPERATIONS)
    assert {f"{op.method.upper()} {op.path}" for op in _operations(world)} == set(OPERATIONS)


def _operations(world: FuzzWorld) -> list[Any]:
    return [result.ok() for result in world.schema.get_all_operations()]


@pytest.mark.parametrize("credential", ["admin-key", "no-key"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz(world: FuzzWorld, label: str, credential: str) -> None:
    headers = {"Authorization": f"Bearer {world.admin_key}"} if credential == "admin-key" else {}
    sent: list[int] = []

    @given(case=_strategy(world, label))
    @HYPOTHESIS
    def fuzz(case: Case) -> None:
        response = case.call(headers=headers)
        sent.append(response.status_code)
        if _known_problem(world, label, case, response.status_code, response.content):
            return
        case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()
    assert sent, "no request was sent"
    public = {"GET /health", "GET /ready", "GET /v2", "GET /v2/health/live", "GET /v2/health/ready"}
    if credential == "no-key" and label not in public:
        # Without a key, nothing but a 401 (or an unmatched route's 404/405) comes back.
        assert set(sent) <= {401, 404, 405}, Counter(sent)


@pytest.mark.parametrize(
    "label",
    [
        "GET /api/v1/models/{name}/versions/{version}",
        "GET /api/v1/models/{name}/versions/{version}/evaluation",
        "POST /api/v1/models/{name}/predict/csv",
    ],
)
def test_fuzzing_reached_the_real_objects(world: FuzzWorld, label: str) -> None:
    """The real-id half of the strategy does reach existing objects (a 200, not only 404s)."""
    headers = {"Authorization": f"Bearer {world.admin_key}"}
    seen: Counter[int] = Counter()

    @given(case=_strategy(world, label))
    @HYPOTHESIS
    def fuzz(case: Case) -> None:
        seen[case.call(headers=headers).status_code] += 1

    fuzz()
    assert seen[200] > 0 and seen[404] > 0, seen


# --------------------------------------------------------------------------- reproductions


def _raw_request(
    world: FuzzWorld, method: str, url: str, data: bytes | None = None, content_type: str = ""
) -> Any:
    client = world.app.test_client()
    headers = {"Authorization": f"Bearer {world.admin_key}"}
    return client.open(url, method=method, data=data, content_type=content_type, headers=headers)


def _url(world: FuzzWorld, label: str) -> tuple[str, str]:
    method, path = label.split(" ", 1)
    return method, path.format(**world.real)


@pytest.mark.parametrize("label", JSON_BODY_OPERATIONS)
def test_json_body_errors_are_documented(world: FuzzWorld, label: str) -> None:
    method, url = _url(world, label)
    documented = _documented(world, label)
    malformed = _raw_request(world, method, url, b"\x00", "application/json")
    assert malformed.status_code == 400
    assert malformed.get_json()["error"]["code"] == "malformed_json"
    not_json = _raw_request(world, method, url, b"a=1", "text/plain")
    assert not_json.status_code == 415
    assert {"400", "415"} <= documented, sorted(documented)


BIGINT = (
    "src bug: integers beyond the SQL column reach the database and fail there -> 500 "
    "internal_error (SQLite: OverflowError above 2**63 - 1; PostgreSQL: DataError above "
    "2**63 - 1 for OFFSET and above 2**31 - 1 for the INTEGER version columns): the "
    "'offset' query parameter of the list routes (PageIn in src/mlserve/api/schemas.py: "
    "Range(0), no maximum), the <int:version> converter of GET "
    "/api/v1/models/<name>/versions/<version> (src/mlserve/api/models.py) and "
    "AliasIn.version (PydanticField(ge=1), no maximum) of PUT .../aliases/<alias>."
)
HUGE_INTEGERS = [
    # (id, method, url, body, backends where it fails today)
    ("datasets-offset-2**63", "GET", "/api/v1/datasets?offset=9223372036854775808", None, ALL),
    ("jobs-offset-2**63", "GET", "/api/v1/training-jobs?offset=9223372036854775808", None, ALL),
    ("audit-offset-2**63", "GET", "/api/v1/audit?offset=9223372036854775808", None, ALL),
    (
        "version-path-2**63",
        "GET",
        "/api/v1/models/diabetes/versions/9223372036854775808",
        None,
        ALL,
    ),
    ("version-path-2**31", "GET", "/api/v1/models/diabetes/versions/2147483648", None, PG),
    ("alias-version-2**63", "PUT", ALIAS_URL, b'{"version": 9223372036854775808}', ALL),
    ("alias-version-2**31", "PUT", ALIAS_URL, b'{"version": 2147483648}', PG),
    # The boundaries, answered on both backends.
    ("datasets-offset-2**63-1", "GET", "/api/v1/datasets?offset=9223372036854775807", None, NONE),
    ("version-path-2**31-1", "GET", "/api/v1/models/diabetes/versions/2147483647", None, NONE),
    ("alias-version-2**31-1", "PUT", ALIAS_URL, b'{"version": 2147483647}', NONE),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "fails_on"),
    [pytest.param(*case[1:], id=case[0]) for case in HUGE_INTEGERS],
)
def test_integer_beyond_the_sql_column_is_not_a_500(
    world: FuzzWorld,
    request: pytest.FixtureRequest,
    method: str,
    url: str,
    body: bytes | None,
    fails_on: frozenset[str],
) -> None:
    response = _raw_request(world, method, url, body, "application/json" if body else "")
    assert response.status_code in (200, 404, 422), response.get_data(as_text=True)
