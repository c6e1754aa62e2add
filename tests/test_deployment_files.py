"""The deployment files: Dockerfile, .dockerignore, compose.yaml, deploy/nginx.conf.

The image itself is built and started by ``tests/e2e/test_image.py`` where a container
tool is available; here, what the files promise is checked as text, and nginx checks its
configuration with ``nginx -t`` where nginx is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
MLSERVE_SERVICES = ("migrate", "serve-1", "serve-2", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    return document


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 2
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, re.MULTILINE)
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    healthcheck = re.search(r"^HEALTHCHECK .*\n.*$", text, re.MULTILINE)
    assert healthcheck and "/health" in healthcheck.group()
    assert 'ENTRYPOINT ["mlserve"]' in text
    assert "COPY --from=build" in text
    assert not re.search(r"^ENV .*MLSERVE_PORT", text, re.MULTILINE)  # PORT must be able to win


def test_dockerignore_sends_only_the_package() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


def test_compose_runs_the_whole_cluster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "minio", "nginx", *MLSERVE_SERVICES} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"] == ["worker"]
    for replica in ("serve-1", "serve-2"):
        assert services[replica]["command"][:2] == ["serve", "--no-worker"]
    assert services["migrate"]["command"] == ["db", "upgrade"]


def test_every_mlserve_process_shares_what_it_must(compose: dict[str, Any]) -> None:
    environments = [compose["services"][name]["environment"] for name in MLSERVE_SERVICES]
    shared = (
        "MLSERVE_DATABASE_URL",
        "MLSERVE_QUEUE_URL",
        "MLSERVE_ARTIFACT_ROOT",
        "MLSERVE_SECRET_KEY",
        "MLSERVE_RATE_LIMIT_STORAGE_URL",
    )
    for name in shared:
        values = {env[name] for env in environments}
        assert len(values) == 1, name
    assert environments[0]["MLSERVE_ARTIFACT_ROOT"].startswith("s3://")


def test_nginx_retries_predictions_only_on_another_replica() -> None:
    lines = (REPO_ROOT / "deploy" / "nginx.conf").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    predict = re.search(r"location ~ \^\((.+)\)\$ \{(.*?)\}", text, re.DOTALL)
    assert predict is not None
    assert "non_idempotent" in predict.group(2)
    assert text.count("non_idempotent") == 1  # uploads and training jobs are never re-sent
    assert "$proxy_add_x_forwarded_for" in text
    pattern = re.compile(predict.group(1).replace("[^/]+", "[^/]+"))
    for path in ("/api/v1/models/diabetes/predict", "/v1/models/diabetes:predict"):
        assert pattern.fullmatch(path)
    assert not pattern.fullmatch("/api/v1/models/diabetes/aliases/production")


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    text = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    local = re.sub(r"server serve-(\d):8000", r"server 127.0.0.1:1800\1", text)
    local = local.replace("/tmp/nginx-mlserve.pid", str(tmp_path / "nginx.pid"))
    (tmp_path / "nginx.conf").write_text(local)
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_kubernetes_example_has_the_parts_and_probes() -> None:
    path = REPO_ROOT / "deploy" / "kubernetes" / "mlserve.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {
        ("Secret", "mlserve"),
        ("Job", "mlserve-migrate"),
        ("Deployment", "mlserve-serve"),
        ("Deployment", "mlserve-worker"),
    } <= kinds
    by_name = {d["metadata"]["name"]: d for d in documents if d["kind"] in ("Deployment", "Job")}
    serve = by_name["mlserve-serve"]["spec"]["template"]["spec"]["containers"][0]
    assert serve["livenessProbe"]["httpGet"]["path"] == "/health"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/ready"
    migrate = by_name["mlserve-migrate"]["spec"]["template"]["spec"]["containers"][0]
    assert migrate["args"] == ["db", "upgrade"]
    worker = by_name["mlserve-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"][0] == "worker"
    for container in (serve, migrate, worker):
        assert {"secretRef": {"name": "mlserve"}} in container["envFrom"]
