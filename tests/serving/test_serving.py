"""Serving: instance validation, the artifact allow-list, damaged artifacts, exact predictions."""

from __future__ import annotations

import hashlib
import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from flask.testing import FlaskClient
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sqlalchemy import update

from mlserve.context import Context
from mlserve.errors import Conflict, ValidationFailed
from mlserve.registry import service as registry
from mlserve.serving.loader import ALLOWED_TYPES, ModelCache, load_pipeline
from mlserve.serving.validation import InstanceValidator
from mlserve.store.orm import ModelVersion
from mlserve.training.signature import model_frame
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, train, upload

# --------------------------------------------------------------------------- InstanceValidator

SIGNATURE = {
    "inputs": [
        {"name": "x", "type": "number", "nullable": False},
        {"name": "n", "type": "integer", "nullable": False},
        {"name": "b", "type": "boolean", "nullable": False},
        {"name": "c", "type": "string", "nullable": False, "categories": ["a", "b"]},
        {"name": "z", "type": "number", "nullable": True},
        {"name": "s", "type": "string", "nullable": True, "categories": ["p", "q"]},
    ],
    "output": {"name": "y", "type": "number"},
}


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"x": 1.5, "n": 3, "b": True, "c": "a", "z": 0.0, "s": "p"}
    row.update(changes)
    return row


def _without(name: str) -> dict[str, Any]:
    row = _row()
    del row[name]
    return row


VALID_ROWS = [
    ("baseline", _row()),
    ("number-as-int", _row(x=2)),
    ("number-negative-zero", _row(x=-0.0)),
    ("number-large-int", _row(x=10**30)),
    ("integer-as-int", _row(n=3)),
    ("integer-as-whole-float", _row(n=3.0)),
    ("integer-negative", _row(n=-4)),
    ("boolean-false", _row(b=False)),
    ("string-known-category", _row(c="b")),
    ("string-unseen-category", _row(c="zzz")),
    ("string-empty", _row(c="")),
    ("nullable-null", _row(z=None)),
    ("nullable-string-null", _row(s=None)),
]

INVALID_ROWS = [
    # (case id, row, field named, message pattern)
    ("integer-fraction", _row(n=3.5), "n", "expected a whole number, got 3.5"),
    ("integer-string", _row(n="3"), "n", "whole number"),
    ("integer-bool", _row(n=True), "n", "whole number"),
    ("integer-nan", _row(n=math.nan), "n", "whole number"),
    ("integer-huge", _row(n=10**400), "n", "whole number"),
    ("number-bool", _row(x=True), "x", "finite number, got True"),
    ("number-string", _row(x="1.5"), "x", "finite number"),
    ("number-nan", _row(x=math.nan), "x", "finite number, got nan"),
    ("number-inf", _row(x=math.inf), "x", "finite number, got inf"),
    ("number-minus-inf", _row(x=-math.inf), "x", "finite number"),
    ("number-huge-int", _row(x=10**400), "x", "finite number"),
    ("number-list", _row(x=[1.0]), "x", "finite number"),
    ("number-null", _row(x=None), "x", "null is not allowed"),
    ("boolean-one", _row(b=1), "b", "true or false, got 1"),
    ("boolean-zero", _row(b=0), "b", "true or false"),
    ("boolean-string", _row(b="true"), "b", "true or false"),
    ("boolean-null", _row(b=None), "b", "null is not allowed"),
    ("string-number", _row(c=1), "c", "expected a string, got 1"),
    ("string-bool", _row(c=False), "c", "a string"),
    ("string-null", _row(c=None), "c", "null is not allowed"),
    ("nullable-wrong-type", _row(z="0"), "z", "finite number"),
    ("nullable-string-number", _row(s=0), "s", "a string"),
    ("missing-feature", _without("n"), "n", "missing feature"),
    ("extra-feature", _row(extra=1), "extra", "unknown feature"),
    ("extra-instead-of-feature", {**_without("z"), "zz": 0.0}, "zz", "unknown feature"),
]


@pytest.fixture(scope="module")
def validator() -> InstanceValidator:
    return InstanceValidator(SIGNATURE)


@pytest.mark.parametrize("row", [pytest.param(r, id=i) for i, r in VALID_ROWS])
def test_instance_validator_accepts_valid_row(
    validator: InstanceValidator, row: dict[str, Any]
) -> None:
    frame = validator.validate([_row(), row])
    assert frame.shape == (2, 6)
    assert list(frame.columns) == ["x", "n", "b", "c", "z", "s"]


@pytest.mark.parametrize(
    ("row", "field", "pattern"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID_ROWS],
)
def test_instance_validator_rejects_invalid_row(
    validator: InstanceValidator, row: dict[str, Any], field: str, pattern: str
) -> None:
    with pytest.raises(ValidationFailed, match=pattern) as caught:
        validator.validate([_row(), _row(), row])
    assert caught.value.details == {"field": field, "row": 2}
    assert caught.value.message.startswith(f"instances[2].{field}: ")


@pytest.mark.parametrize(
    ("instances", "pattern", "details"),
    [
        ([], "non-empty list", {"field": "instances"}),
        ({"x": 1}, "non-empty list", {"field": "instances"}),
        ("rows", "non-empty list", {"field": "instances"}),
        (None, "non-empty list", {"field": "instances"}),
        ([_row(), 5], r"instances\[1\] must be an object", {"field": "instances", "row": 1}),
        (  # a list row (KServe V1's list form) must hold every feature, in order
            [[1.5, 3, True]],
            r"instances\[0\]: a row given as a list needs 6 values",
            {"field": "instances", "row": 0, "expected": 6},
        ),
    ],
    ids=["empty", "object", "string", "null", "scalar-row", "list-row"],
)
def test_instance_validator_rejects_bad_container(
    validator: InstanceValidator, instances: Any, pattern: str, details: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed, match=pattern) as caught:
        validator.validate(instances)
    assert caught.value.details == details


def test_instance_validator_builds_model_frame(validator: InstanceValidator) -> None:
    frame = validator.validate(
        [
            _row(x=1, n=2.0, b=False, c="b", z=None, s="q"),
            _row(x=-2.5, n=7, b=True, c="new", z=4.25, s=None),
        ]
    )
    assert frame.index.tolist() == [0, 1]
    assert {k: str(v) for k, v in frame.dtypes.items()} == {
        "x": "float64",
        "n": "float64",
        "b": "float64",
        "c": "object",
        "z": "float64",
        "s": "object",
    }
    assert frame["x"].tolist() == [1.0, -2.5]
    assert frame["n"].tolist() == [2.0, 7.0]
    assert frame["b"].tolist() == [0.0, 1.0]
    assert frame["c"].tolist() == ["b", "new"]
    assert math.isnan(frame["z"][0]) and frame["z"][1] == 4.25
    # Missing text is NaN in an object column, as model_frame gives the pipeline at
    # training time (what SimpleImputer recognises as missing).
    assert frame["s"].dtype == object
    assert frame["s"][0] == "q" and math.isnan(frame["s"][1])


def test_instance_validator_ignores_row_key_order(validator: InstanceValidator) -> None:
    reordered = dict(reversed(list(_row().items())))
    pd.testing.assert_frame_equal(validator.validate([reordered]), validator.validate([_row()]))


# --------------------------------------------------------------------------- load_pipeline


class Planted(BaseEstimator, TransformerMixin):
    """A transformer whose type no allow-list trusts; records any construction."""

    built: list[str] = []

    def __setstate__(self, state: dict[str, Any]) -> None:
        Planted.built.append("setstate")
        self.__dict__.update(state)

    def fit(self, X: Any, y: Any = None) -> Planted:
        return self

    def transform(self, X: Any) -> Any:
        return X


def _fitted(*steps: tuple[str, Any]) -> Pipeline:
    X = np.arange(20, dtype=float).reshape(10, 2)
    y = X[:, 0] * 2 + X[:, 1]
    return Pipeline(list(steps)).fit(X, y)


def test_load_pipeline_round_trips_trusted_pipeline() -> None:
    pipeline = _fitted(("scale", StandardScaler()), ("model", LinearRegression()))
    loaded = load_pipeline(sio.dumps(pipeline))
    X = np.array([[1.0, 2.0], [3.5, -1.0]])
    np.testing.assert_allclose(loaded.predict(X), pipeline.predict(X), rtol=0, atol=1e-12)


def test_load_pipeline_accepts_allowed_tree_type() -> None:
    assert "sklearn.tree._tree.Tree" in ALLOWED_TYPES
    pipeline = _fitted(("model", DecisionTreeRegressor(random_state=0)))
    assert "sklearn.tree._tree.Tree" in sio.get_untrusted_types(data=sio.dumps(pipeline))
    loaded = load_pipeline(sio.dumps(pipeline))
    X = np.array([[1.0, 2.0], [8.0, 9.0]])
    assert loaded.predict(X).tolist() == pipeline.predict(X).tolist()


def _untrusted_function_artifact() -> bytes:
    return sio.dumps(Pipeline([("run", FunctionTransformer(func=os.system))]))


def _untrusted_class_artifact() -> bytes:
    return sio.dumps(_fitted(("planted", Planted()), ("model", LinearRegression())))


@pytest.mark.parametrize(
    ("make", "refused_type"),
    [
        (_untrusted_function_artifact, f"{os.system.__module__}.system"),
        (_untrusted_class_artifact, f"{__name__}.Planted"),
    ],
    ids=["os-system", "custom-class"],
)
def test_load_pipeline_refuses_untrusted_type(make: Any, refused_type: str) -> None:
    data = make()
    Planted.built.clear()
    with pytest.raises(Conflict, match="types that are not allowed") as caught:
        load_pipeline(data)
    assert refused_type in caught.value.details["types"]
    assert Planted.built == []


def _zip_without_schema() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 10, b"", b"PK\x03\x04truncated", _zip_without_schema()],
    ids=["garbage", "empty", "truncated-zip", "zip-without-schema"],
)
def test_load_pipeline_refuses_unreadable_bytes(data: bytes) -> None:
    with pytest.raises(Conflict, match="could not be loaded"):
        load_pipeline(data)


def test_load_pipeline_refuses_non_pipeline() -> None:
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    with pytest.raises(Conflict, match="not a scikit-learn pipeline"):
        load_pipeline(sio.dumps(model))


# --------------------------------------------------------------------------- artifacts over HTTP


def _instances(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """Feature rows as Python values at full precision, missing values as None."""
    records = frame.drop(columns="target").head(n).to_dict(orient="records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in records
    ]


def _artifact_path(ctx: Context, name: str, kind: str = "skops") -> Path:
    """Path of the artifact of version 1 that serves ``name``.

    ``kind="skops"`` also switches the version to the scikit-learn runtime, so
    the skops file is the one loaded; ``kind="onnx"`` keeps the compiled model.
    """
    row = registry.get_version(ctx, name, 1)
    if kind == "skops":
        with ctx.db.session() as session:
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.model_name == name)
                .values(runtime="sklearn")
            )
        return Path(ctx.store.root) / row.artifact_key
    assert row.runtime == "onnx" and row.onnx_artifact_key is not None
    return Path(ctx.store.root) / row.onnx_artifact_key


def _predict(client: FlaskClient, name: str, instances: list[dict[str, Any]]) -> Any:
    return client.post(f"/api/v1/models/{name}/predict", json={"instances": instances})


def _still_serving(client: FlaskClient, rows: list[dict[str, Any]]) -> None:
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/api/v1/models/diabetes").status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    other = _predict(client, "other", rows)
    assert other.status_code == 200
    assert len(other.get_json()["predictions"]) == len(rows)


@pytest.mark.parametrize("kind", ["skops", "onnx"])
def test_predict_tampered_artifact_returns_409_and_service_continues(
    client: FlaskClient,
    ctx: Context,
    two_models: dict[str, Any],
    diabetes_frame: pd.DataFrame,
    kind: str,
) -> None:
    rows = _instances(diabetes_frame, 3)
    path = _artifact_path(ctx, "diabetes", kind)
    ctx.models.clear()
    good = _predict(client, "diabetes", rows).get_json()["predictions"]
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    ctx.models.clear()
    for url in ("/api/v1/models/diabetes/predict", "/v1/models/diabetes:predict"):
        response = client.post(url, json={"instances": rows})
        details = assert_error(response, 409, "conflict")
        assert "sha256" in details["message"]
        assert details["artifact"] == f"models/{two_models['job']['id']}.{kind}"
    marked = client.get("/api/v1/models/diabetes/versions/1").get_json()
    assert "sha256" in marked["corrupt_reason"]
    _still_serving(client, rows)
    path.write_bytes(original)
    assert _predict(client, "diabetes", rows).get_json()["predictions"] == good
    assert client.get("/api/v1/models/diabetes/versions/1").get_json()["corrupt_reason"] is None


def test_predict_planted_artifact_with_matching_digest_returns_409(
    client: FlaskClient, ctx: Context, two_models: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    planted = _untrusted_class_artifact()
    path = _artifact_path(ctx, "diabetes")
    path.write_bytes(planted)
    with ctx.db.session() as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.model_name == "diabetes")
            .values(artifact_sha256=hashlib.sha256(planted).hexdigest())
        )
    ctx.models.clear()
    Planted.built.clear()
    rows = _instances(diabetes_frame, 2)
    details = assert_error(_predict(client, "diabetes", rows), 409, "conflict")
    assert f"{__name__}.Planted" in details["types"]
    assert Planted.built == []
    _still_serving(client, rows)


@pytest.mark.parametrize("kind", ["skops", "onnx"])
def test_predict_deleted_artifact_returns_409_and_service_continues(
    client: FlaskClient,
    ctx: Context,
    two_models: dict[str, Any],
    diabetes_frame: pd.DataFrame,
    kind: str,
) -> None:
    rows = _instances(diabetes_frame, 2)
    _artifact_path(ctx, "diabetes", kind).unlink()
    ctx.models.clear()
    details = assert_error(_predict(client, "diabetes", rows), 409, "conflict")
    assert details["artifact"] == f"models/{two_models['job']['id']}.{kind}"
    assert "missing" in details["message"]
    _still_serving(client, rows)


def test_model_cache_reuses_and_evicts(ctx: Context, two_models: dict[str, Any]) -> None:
    one = ctx.settings.model_copy(update={"model_cache_size": 1})
    cache = ModelCache(settings=one, db=ctx.db, store=ctx.store)
    diabetes = registry.get_version(ctx, "diabetes", 1)
    other = registry.get_version(ctx, "other", 1)
    first = cache.get(diabetes)
    assert cache.get(diabetes) is first
    assert (first.model_name, first.version, first.classes) == ("diabetes", 1, None)
    cache.get(other)
    assert len(cache) == 1
    assert cache.get(diabetes) is not first


# --------------------------------------------------------------------------- exact predictions


def _loaded(ctx: Context, name: str) -> tuple[Pipeline, dict[str, Any]]:
    row = registry.get_version(ctx, name, 1)
    return load_pipeline(ctx.store.get_bytes(row.artifact_key, row.artifact_sha256)), row.signature


def test_http_batch_equals_pipeline_regression(
    client: FlaskClient, ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    rows = _instances(diabetes_frame, 100)
    served = np.array(_predict(client, "diabetes", rows).get_json()["predictions"])
    pipeline, signature = _loaded(ctx, "diabetes")
    expected = pipeline.predict(model_frame(diabetes_frame.head(100), signature))
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)


def test_http_batch_equals_pipeline_classification(
    client: FlaskClient, ctx: Context, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    body = _predict(client, "iris", _instances(iris_frame, 150)).get_json()
    pipeline, signature = _loaded(ctx, "iris")
    X = model_frame(iris_frame, signature)
    assert body["predictions"] == pipeline.predict(X).tolist()
    assert body["classes"] == pipeline.classes_.tolist()
    np.testing.assert_allclose(
        np.array(body["probabilities"]), pipeline.predict_proba(X), rtol=0, atol=1e-9
    )


def test_http_batch_equals_pipeline_mixed_types_with_nulls(
    client: FlaskClient, ctx: Context, diabetes_frame: pd.DataFrame
) -> None:
    frame = diabetes_frame.head(150).copy()
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female").astype(object)
    frame.loc[frame.index % 5 == 0, "sex"] = None
    frame.loc[frame.index % 9 == 0, "bmi"] = np.nan
    frame["smoker"] = frame.index % 4 == 0
    frame["visits"] = frame.index % 6
    dataset = upload(client, frame_csv(frame), "mixed.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target="target",
        algorithm="gradient_boosting",
        model_name="mixed",
        cv_folds=0,
        params={"max_iter": 20},
    ).get_json()
    assert job["status"] == "succeeded", job
    rows = _instances(frame, 150)
    assert sum(r["bmi"] is None for r in rows) == 17
    assert sum(r["sex"] is None for r in rows) == 30
    served = np.array(_predict(client, "mixed", rows).get_json()["predictions"])
    pipeline, signature = _loaded(ctx, "mixed")
    expected = pipeline.predict(model_frame(frame, signature))
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)


def test_null_text_feature_is_imputed_with_the_most_frequent_category() -> None:
    from sklearn.datasets import load_diabetes

    from mlserve.training.fit import train
    from mlserve.training.spec import TrainSpec

    frame = load_diabetes(as_frame=True).frame
    rng = np.random.default_rng(0)
    frame["colour"] = rng.choice(["red", "red", "green", "blue"], size=len(frame))
    frame["target"] += np.where(frame["colour"] == "red", 50.0, 0.0)
    frame.loc[frame.index[::9], "colour"] = None
    spec = TrainSpec(dataset_id="d", target="target", algorithm="ridge", model_name="m", cv_folds=0)
    result = train(frame, spec, "regression")
    validator = InstanceValidator(result.signature)
    row = frame.drop(columns=["target"]).iloc[0].to_dict()
    missing, red, green = ({**row, "colour": c} for c in (None, "red", "green"))
    predictions = result.pipeline.predict(validator.validate([missing, red, green]))
    assert predictions[0] == pytest.approx(predictions[1], abs=1e-9)
    assert abs(predictions[1] - predictions[2]) > 10
