"""Modules imported on first use (mlserve.lazy), and the lean HTTP worker they make
(issue 18, item 6): a worker serving compiled versions imports neither scikit-learn,
pandas nor pyarrow until a request needs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlserve.api.current import context_of
from mlserve.lazy import LazyModule, lazy_module

HEAVY = ("sklearn", "pandas", "pyarrow", "scipy", "skl2onnx")


def _fresh(name: str) -> None:
    sys.modules.pop(name, None)


def test_the_module_is_imported_on_the_first_attribute_read() -> None:
    name = "email.mime.audio"
    _fresh(name)
    proxy = lazy_module(name)
    assert isinstance(proxy, LazyModule)
    assert name not in sys.modules
    assert proxy.MIMEAudio.__name__ == "MIMEAudio"
    assert name in sys.modules
    assert proxy.MIMEAudio is sys.modules[name].MIMEAudio


def test_writes_and_deletes_reach_the_real_module() -> None:
    proxy = lazy_module("email.mime.image")
    real = sys.modules.get("email.mime.image") or __import__("email.mime.image").mime.image
    proxy.mlserve_marker = 42
    assert real.mlserve_marker == 42  # type: ignore[attr-defined]
    assert proxy.mlserve_marker == 42
    del proxy.mlserve_marker
    assert not hasattr(real, "mlserve_marker")
    with pytest.raises(AttributeError, match="mlserve_marker"):
        _ = proxy.mlserve_marker


def test_a_missing_module_fails_on_first_read_not_before() -> None:
    proxy = lazy_module("mlserve.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        _ = proxy.anything


def test_threads_reading_at_once_import_the_module_once() -> None:
    name = "email.mime.message"
    _fresh(name)
    proxy = lazy_module(name)
    seen: list[types.ModuleType] = []
    barrier = threading.Barrier(8)

    def read() -> None:
        barrier.wait()
        seen.append(sys.modules[proxy.MIMEMessage.__module__])

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert all(module is seen[0] for module in seen)


PROBE = textwrap.dedent(
    """
    import io, json, sys
    from mlserve.wsgi import create

    HEAVY = {heavy!r}
    app = create()
    preload = app.extensions["mlserve"].preload
    assert preload.wait(60)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + sys.argv[1]
    diabetes, iris = json.loads(sys.argv[2]), json.loads(sys.argv[3])
    out = {{"answers": {{}}, "loaded": {{}}, "preloaded": preload.loaded}}

    def step(label, response):
        out["answers"][label] = [response.status_code, response.get_json(silent=True)]
        out["loaded"][label] = sorted(m for m in HEAVY if m in sys.modules)

    step("start", client.get("/health"))
    step("ready", client.get("/ready"))
    step("v1", client.post("/api/v1/models/diabetes/predict", json={{"instances": [diabetes]}}))
    step("v1_classifier", client.post("/api/v1/models/iris/predict", json={{"instances": [iris]}}))
    step("kserve_v1", client.post("/v1/models/iris:predict",
                                  json={{"instances": [list(iris.values())]}}))
    v2_inputs = [{{"name": k, "shape": [1], "datatype": "FP64", "data": [v]}}
                 for k, v in iris.items()]
    step("v2", client.post("/v2/models/iris/infer", json={{"inputs": v2_inputs}}))
    csv = ",".join(diabetes) + "\\n" + ",".join(str(v) for v in diabetes.values()) + "\\n"
    form = {{"file": (io.BytesIO(csv.encode()), "rows.csv")}}
    step("csv", client.post("/api/v1/models/diabetes/predict/csv", data=form,
                            content_type="multipart/form-data"))
    print(json.dumps(out))
    """
)


def _probe(settings_home: Path, key: str, diabetes: dict[str, Any], iris: dict[str, Any]) -> Any:
    env = {**os.environ, "MLSERVE_HOME": str(settings_home), "MLSERVE_LOG_LEVEL": "WARNING"}
    env["MLSERVE_PRELOAD_ALIAS"] = "production"  # preloading compiled versions stays lean too
    code = PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code, key, json.dumps(diabetes), json.dumps(iris)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_serving_compiled_versions_stays_lean(
    app: Flask, client: FlaskClient, iris_model: dict[str, Any], diabetes_model: dict[str, Any]
) -> None:
    key = app.extensions["test_keys"]["admin"]
    for name in ("diabetes", "iris"):
        assert (
            client.put(f"/api/v1/models/{name}/aliases/production", json={"version": 1}).status_code
            == 200
        )
        assert client.get(f"/api/v1/models/{name}/versions/1").get_json()["runtime"] == "onnx"
    diabetes = {f["name"]: 0.01 for f in diabetes_model["version"]["signature"]["inputs"]}
    iris = dict(
        zip(
            [f["name"] for f in iris_model["version"]["signature"]["inputs"]],
            [5.1, 3.5, 1.4, 0.2],
            strict=True,
        )
    )
    expected = client.post("/api/v1/models/diabetes/predict", json={"instances": [diabetes]})
    context_of(app).db.dispose()

    out = _probe(context_of(app).settings.home, key, diabetes, iris)

    answers, loaded = out["answers"], out["loaded"]
    assert out["preloaded"] == 2  # both production versions, before the first request
    for label in ("start", "v1", "v1_classifier", "kserve_v1", "v2"):
        assert answers[label][0] == 200, (label, answers[label])
        assert loaded[label] == [], f"{label} imported {loaded[label]}"
    assert answers["ready"][0] in (200, 503)  # no job worker runs here: 503 names it
    assert loaded["ready"] == []
    assert answers["v1"][1]["predictions"] == expected.get_json()["predictions"]
    assert answers["v1_classifier"][1]["predictions"] == ["setosa"]
    assert answers["kserve_v1"][1]["predictions"] == ["setosa"]
    assert answers["v2"][1]["outputs"][0]["data"] == ["setosa"]
    # The probe sees imports: the CSV route parses with pandas, and pandas is then loaded.
    assert answers["csv"][0] == 200, answers["csv"]
    assert "pandas" in loaded["csv"]
