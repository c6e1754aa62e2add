"""`mlserve models register NAME FILE`: a model file registered through the real app."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner, Result
from flask import Flask

from mlserve.cli.main import main as cli
from tests.conftest import keyed_client
from tests.serving.conftest import linear_graph


def _run(app: Flask, *argv: str) -> Result:
    keyed_client(app)
    key = app.extensions["test_keys"]["admin"]
    transport = httpx.WSGITransport(app=app)
    args = [*argv, "--url", "http://mlserve.test", "--api-key", key]
    return CliRunner().invoke(cli, args, obj={"transport": transport})


def test_register_prints_the_new_version(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "linear.onnx"
    path.write_bytes(linear_graph(n_features=2, n_outputs=1).SerializeToString())
    metadata = json.dumps({"task": "regression", "feature_names": ["a", "b"]})
    result = _run(app, "models", "register", "lin", str(path), "--metadata", metadata)
    assert result.exit_code == 0, result.output
    version = json.loads(result.output)
    assert version["source"] == "imported"
    assert version["imported"]["layout"] == "matrix"
    assert [f["name"] for f in version["signature"]["inputs"]] == ["a", "b"]


def test_a_refused_file_exits_1_with_the_reason(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    result = _run(app, "models", "register", "lin", str(path))
    assert result.exit_code == 1
    assert "ONNX" in result.output
