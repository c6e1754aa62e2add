"""The contenders of ``bench/serve.py``: their virtualenvs, servers and request formats.

Each peer gets its own virtualenv under ``bench/.work/venvs/<name>`` (reused
while its requirement list is unchanged) with the scikit-learn, numpy and
pandas versions of mlserve's own venv, so every server loads the very same
fitted pipelines. mlserve itself runs from the venv running the harness.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from serve_load import Server, free_port

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
VENVS = WORK / "venvs"
APPS = BENCH / "contenders"
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
QUIET_ENV = {"DO_NOT_TRACK": "1", "BENTOML_DO_NOT_TRACK": "True", "MLFLOW_DISABLE_TELEMETRY": "1"}
LOOPBACK = "127.0.0.1"
# A rate limit is a policy, not a cost: left on, it would be what the benchmark
# measures (one key, one client address). Authentication stays on (a key is sent).
MLSERVE_ENV = {"MLSERVE_RATE_LIMIT_PER_KEY": "off", "MLSERVE_RATE_LIMIT_PER_IP": "off"}


def stack_pins() -> list[str]:
    """``scikit-learn==``, ``numpy==`` and ``pandas==`` pins of the harness's own venv."""
    return [f"{name}=={metadata.version(name)}" for name in ("scikit-learn", "numpy", "pandas")]


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """Create or update the virtualenv ``name`` so that it holds ``requirements``.

    The venv is reused as is when it was built from the same requirement list
    (recorded in ``.bench-requirements``); otherwise pip installs the list.

    Returns
    -------
    Path
        The venv's folder.

    Raises
    ------
    RuntimeError
        If pip fails; the message ends with the tail of its log.
    subprocess.CalledProcessError
        If the venv cannot be created.
    """
    venv = VENVS / name
    marker = venv / ".bench-requirements"
    wanted = "\n".join(requirements) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return venv
    log = VENVS / f"{name}.pip.log"
    print(f"[setup] installing {name} ({log}): {' '.join(requirements)}", file=sys.stderr)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install"]
    with log.open("w") as out:
        for command in ([*pip, "--upgrade", "pip"], [*pip, *requirements]):
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                tail = "\n".join(log.read_text().splitlines()[-20:])
                raise RuntimeError(f"pip failed for {name} (log {log}):\n{tail}")
    marker.write_text(wanted)
    return venv


def package_versions(python: Path, names: list[str]) -> dict[str, str]:
    """Versions of the distributions ``names`` installed for interpreter ``python``."""
    code = (
        "import json, sys\nfrom importlib import metadata\nout = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


@dataclass
class Prepared:
    """What the harness prepared for the servers.

    Attributes
    ----------
    run_dir : Path
        Work folder of this run (logs, exported models, mlserve's home).
    mlserve_home : Path
        MLSERVE_HOME holding the trained models.
    model_dir : Path
        ``<model>.joblib`` pipelines and ``features.json``.
    mlserve_server : str or None
        Value for ``mlserve serve --server``; ``None`` leaves the flag out.
    mlserve_env : dict
        Settings of every mlserve process: :data:`MLSERVE_ENV` and the
        ``--mlserve-env`` overrides.
    api_key : str or None
        Admin key created in ``mlserve_home`` (``None``: mlserve without keys).
    """

    run_dir: Path
    mlserve_home: Path
    model_dir: Path
    mlserve_server: str | None
    mlserve_env: dict[str, str]
    api_key: str | None = None


class Contender:
    """One way of serving the pipelines; subclasses fill in the details.

    Attributes
    ----------
    name : str
    requirements : list of str
        pip requirements of its own venv; empty means the harness's venv.
    packages : list of str
        Distributions whose versions the report lists.
    per_model : bool
        Whether a server holds one model only (one server per model).
    checks_predictions : bool
        Whether its answers hold predictions to compare (the echo floor's do not).
    """

    name = ""
    requirements: list[str] = []
    packages: list[str] = []
    per_model = False
    checks_predictions = True

    def venv(self) -> Path:
        """The venv the server runs from (installed on first use)."""
        if not self.requirements:
            return Path(sys.executable).parent.parent
        return ensure_venv(self.name, [*self.requirements, *stack_pins()])

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of the server: one BLAS/OpenMP thread, the venv first on PATH."""
        venv = self.venv()
        path = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, **THREAD_ENV, **QUIET_ENV, "PATH": path, **extra}

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """The server for ``models`` listening on ``port``."""
        raise NotImplementedError

    def headers(self, prep: Prepared) -> dict[str, str]:
        """Extra HTTP headers of every request (none by default)."""
        return {}

    def path(self, model: str) -> str:
        """URL path of a prediction with ``model``."""
        raise NotImplementedError

    def body(self, model: str, records: list[dict[str, Any]], numeric: set[str]) -> bytes:
        """JSON body of a prediction on ``records`` (``None`` for missing values)."""
        raise NotImplementedError

    def predictions(self, answer: Any) -> list[float]:
        """The predictions in a decoded JSON answer."""
        raise NotImplementedError

    def _server(
        self, prep: Prepared, label: str, argv: list[str], env: dict[str, str], ready: list[str]
    ) -> Server:
        cwd = prep.run_dir / label
        cwd.mkdir(parents=True, exist_ok=True)
        return Server(label, argv, env, cwd, ready, prep.run_dir / "logs" / f"{label}.log")


def _json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


class InstancesJson:
    """The ``{"instances": records}`` body and ``answer["predictions"]`` of mlserve's v1
    route, which the FastAPI app and the floor take too."""

    def body(self, model: str, records: list[dict[str, Any]], numeric: set[str]) -> bytes:
        """``{"instances": records}``."""
        return _json({"instances": records})

    def predictions(self, answer: Any) -> list[float]:
        """``answer["predictions"]``."""
        return list(answer["predictions"])


class Mlserve(InstancesJson, Contender):
    """mlserve itself (``mlserve serve --workers 2 --no-worker``) from the harness's venv."""

    name = "mlserve"
    packages = ["mlserve", "gunicorn", "granian", "flask", "orjson", "onnxruntime", "skops"]

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """mlserve on ``port`` with the trained home, no embedded job worker."""
        argv = [str(self.venv() / "bin" / "mlserve"), "serve", "--workers", "2"]
        argv += ["--port", str(port), "--no-worker"]
        if prep.mlserve_server:
            argv += ["--server", prep.mlserve_server]
        env = self.env(MLSERVE_HOME=str(prep.mlserve_home), **prep.mlserve_env)
        return self._server(prep, self.name, argv, env, [f"http://{LOOPBACK}:{port}/health"])

    def headers(self, prep: Prepared) -> dict[str, str]:
        """``Authorization: Bearer <key>`` when mlserve has keys."""
        return {"Authorization": f"Bearer {prep.api_key}"} if prep.api_key else {}

    def path(self, model: str) -> str:
        """``/api/v1/models/<model>/predict``."""
        return f"/api/v1/models/{model}/predict"


class MlserveColumnar(Mlserve):
    """mlserve's v1 route with the columnar body, ``{"inputs": {feature: [values]}}``
    (TensorFlow Serving's columnar format, docs/api.md): a server of its own."""

    name = "mlserve-columnar"

    def body(self, model: str, records: list[dict[str, Any]], numeric: set[str]) -> bytes:
        """``{"inputs": {feature: [value per row]}}``."""
        return _json({"inputs": {name: [r[name] for r in records] for name in records[0]}})


V2_HEAD_BYTES = 4096  # the JSON part, padded with spaces: one header value for every body


class MlserveV2Binary(Mlserve):
    """The Open Inference Protocol route with binary tensors: one 1-D tensor per feature
    (FP64 with NaN for a missing number, BYTES for text), their bytes after the JSON part
    (KServe's binary tensor extension, as Triton's clients send them). The JSON part is
    padded to :data:`V2_HEAD_BYTES` so that ``Inference-Header-Content-Length`` is the
    same for every body; the answer is JSON."""

    name = "mlserve-v2"

    def headers(self, prep: Prepared) -> dict[str, str]:
        """The key, and ``Inference-Header-Content-Length``."""
        return {**super().headers(prep), "Inference-Header-Content-Length": str(V2_HEAD_BYTES)}

    def path(self, model: str) -> str:
        """``/v2/models/<model>/infer``."""
        return f"/v2/models/{model}/infer"

    def body(self, model: str, records: list[dict[str, Any]], numeric: set[str]) -> bytes:
        """The JSON part (padded) then every tensor's bytes, in feature order."""
        inputs, chunks = [], []
        for name in records[0]:
            values = [r[name] for r in records]
            if name in numeric:
                raw = np.asarray([np.nan if v is None else v for v in values], "<f8").tobytes()
                datatype = "FP64"
            else:
                encoded = [str(v).encode() for v in values]
                raw = b"".join(struct.pack("<I", len(b)) + b for b in encoded)
                datatype = "BYTES"
            parameters = {"binary_data_size": len(raw)}
            inputs.append(
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": [len(values)],
                    "parameters": parameters,
                }
            )
            chunks.append(raw)
        head = _json({"inputs": inputs})
        if len(head) > V2_HEAD_BYTES:
            raise ValueError(f"the JSON part takes {len(head)} bytes > {V2_HEAD_BYTES}")
        return head.ljust(V2_HEAD_BYTES) + b"".join(chunks)

    def predictions(self, answer: Any) -> list[float]:
        """The ``predict`` output's data."""
        return list(answer["outputs"][0]["data"])


class FastAPIApp(InstancesJson, Contender):
    """``bench/contenders/fastapi_app.py`` under ``uvicorn --workers 2``."""

    name = "fastapi"
    requirements = ["fastapi==0.165.0", "uvicorn[standard]==0.54.0", "joblib"]
    packages = ["fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "joblib"]

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """uvicorn with 2 workers, loading every model in ``prep.model_dir``."""
        argv = [str(self.venv() / "bin" / "uvicorn"), "fastapi_app:app", "--app-dir", str(APPS)]
        argv += ["--host", LOOPBACK, "--port", str(port), "--workers", "2"]
        env = self.env(BENCH_MODEL_DIR=str(prep.model_dir))
        return self._server(prep, "fastapi", argv, env, [f"http://{LOOPBACK}:{port}/health"])

    def path(self, model: str) -> str:
        """``/predict/<model>``."""
        return f"/predict/{model}"


class MLServer(Contender):
    """Seldon MLServer with mlserver-sklearn: a model repository, 2 parallel workers."""

    name = "mlserver"
    # uvloop 0.22+ makes asyncio.get_event_loop() raise outside a running loop,
    # which kills MLServer's parallel inference workers at start.
    requirements = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]
    packages = ["mlserver", "mlserver-sklearn", "uvloop", "fastapi", "uvicorn"]

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """``mlserver start`` on a repository of the joblib pipelines."""
        repo = prep.run_dir / "mlserver"
        repo.mkdir(parents=True, exist_ok=True)
        settings = {
            "debug": False,
            "host": LOOPBACK,
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 2,
        }
        (repo / "settings.json").write_text(json.dumps(settings, indent=2))
        for model in models:
            folder = repo / model
            folder.mkdir(exist_ok=True)
            target = folder / "model.joblib"
            if not target.exists():
                target.symlink_to(prep.model_dir / f"{model}.joblib")
            model_settings = {
                "name": model,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            }
            (folder / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
        argv = [str(self.venv() / "bin" / "mlserver"), "start", str(repo)]
        base = f"http://{LOOPBACK}:{port}"
        ready = [f"{base}/v2/health/ready"] + [f"{base}/v2/models/{m}/ready" for m in models]
        server = self._server(prep, "mlserver", argv, self.env(), ready)
        server.cwd = repo
        return server

    def path(self, model: str) -> str:
        """``/v2/models/<model>/infer``."""
        return f"/v2/models/{model}/infer"

    def body(self, model: str, records: list[dict[str, Any]], numeric: set[str]) -> bytes:
        """V2 inference request, one input per column, decoded by the pandas codec."""
        inputs = []
        for column in records[0]:
            spec: dict[str, Any] = {"name": column, "shape": [len(records)]}
            if column in numeric:
                spec["datatype"] = "FP64"
            else:
                spec["datatype"] = "BYTES"
                spec["parameters"] = {"content_type": "str"}
            spec["data"] = [row[column] for row in records]
            inputs.append(spec)
        return _json({"parameters": {"content_type": "pd"}, "inputs": inputs})

    def predictions(self, answer: Any) -> list[float]:
        """``answer["outputs"][0]["data"]``."""
        return list(answer["outputs"][0]["data"])


class BentoML(Contender):
    """``bench/contenders/bentoml_service.py`` under ``bentoml serve`` (2 workers)."""

    name = "bentoml"
    requirements = ["bentoml==1.4.39"]
    packages = ["bentoml", "uvicorn", "starlette", "pydantic"]

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """``bentoml serve bentoml_service:Regressor`` loading ``prep.model_dir``."""
        argv = [str(self.venv() / "bin" / "bentoml"), "serve", "bentoml_service:Regressor"]
        argv += ["--host", LOOPBACK, "--port", str(port), "--working-dir", str(APPS)]
        env = self.env(
            BENCH_MODEL_DIR=str(prep.model_dir), BENTOML_HOME=str(prep.run_dir / "bentoml-home")
        )
        return self._server(prep, "bentoml", argv, env, [f"http://{LOOPBACK}:{port}/readyz"])

    def path(self, model: str) -> str:
        """``/predict`` (the model is named in the body)."""
        return "/predict"

    def body(self, model: str, records: list[dict[str, Any]], numeric: set[str]) -> bytes:
        """``{"model": model, "records": records}``."""
        return _json({"model": model, "records": records})

    def predictions(self, answer: Any) -> list[float]:
        """The answer is the list itself."""
        return list(answer)


class MLflow(Contender):
    """``mlflow models serve --env-manager local -w 2``, one server per model."""

    name = "mlflow"
    # uvicorn[standard] brings uvloop: with plain asyncio, uvicorn --workers 2 leaves
    # Nagle on for keep-alive connections (uvicorn issue 3149) and each request
    # waits ~40 ms for the client's delayed ACK, which would not be MLflow's fault.
    requirements = ["mlflow==3.17.2", "uvicorn[standard]"]
    packages = ["mlflow", "mlflow-skinny", "uvicorn", "uvloop", "httptools", "fastapi"]
    per_model = True

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """Export ``models[0]`` with mlflow.sklearn and serve it."""
        (model,) = models
        python = self.venv() / "bin" / "python"
        out = prep.run_dir / "mlflow-models" / model
        if not out.exists():
            export = [str(python), str(APPS / "mlflow_export.py")]
            export += [
                str(prep.model_dir / f"{model}.joblib"),
                str(prep.model_dir / "features.json"),
            ]
            done = subprocess.run(
                [*export, str(out)], env=self.env(), capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"MLflow export of {model} failed:\n{done.stderr[-3000:]}")
        argv = [str(self.venv() / "bin" / "mlflow"), "models", "serve", "-m", str(out)]
        argv += ["-h", LOOPBACK, "-p", str(port), "-w", "2", "--env-manager", "local"]
        ready = [f"http://{LOOPBACK}:{port}/ping"]
        return self._server(prep, f"mlflow-{model}", argv, self.env(), ready)

    def path(self, model: str) -> str:
        """``/invocations``."""
        return "/invocations"

    def body(self, model: str, records: list[dict[str, Any]], numeric: set[str]) -> bytes:
        """``{"dataframe_records": records}``."""
        return _json({"dataframe_records": records})

    def predictions(self, answer: Any) -> list[float]:
        """``answer["predictions"]``."""
        return list(answer["predictions"])


class Floor(InstancesJson, Contender):
    """The model floor: ``bench/contenders/floor_app.py --mode model``, 2 processes.

    A bare asyncio responder running each version's own ONNX graph (exported
    by ``serve_models.export``) from the harness's venv: what serving costs
    with no framework at all.
    """

    name = "floor"
    mode = "model"
    packages = ["onnxruntime", "orjson", "numpy"]

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """``floor_app.py --processes 2`` on ``port``, serving ``prep.model_dir``."""
        argv = [str(self.venv() / "bin" / "python"), str(APPS / "floor_app.py")]
        argv += ["--mode", self.mode, "--models", str(prep.model_dir)]
        argv += ["--host", LOOPBACK, "--port", str(port), "--processes", "2"]
        return self._server(prep, self.name, argv, self.env(), [f"http://{LOOPBACK}:{port}/health"])

    def path(self, model: str) -> str:
        """``/predict/<model>``."""
        return f"/predict/{model}"


class Echo(Floor):
    """The echo floor: the same responder answering a constant body, nothing parsed."""

    name = "echo"
    mode = "echo"
    packages = ["orjson"]
    checks_predictions = False


class WsgiFloor(Floor):
    """The WSGI model floor: the model floor's work as a bare WSGI application, run by
    granian as ``mlserve serve`` runs mlserve (2 workers, 4 blocking threads each;
    ``bench/contenders/wsgi_floor.py``): the fastest a WSGI application predicts here."""

    name = "wsgi-floor"
    packages = ["granian", "onnxruntime", "orjson", "numpy"]
    models_env = True

    def server(self, prep: Prepared, models: list[str], port: int) -> Server:
        """``granian --interface wsgi --workers 2 --blocking-threads 4`` on ``port``."""
        argv = [str(self.venv() / "bin" / "granian"), "--interface", "wsgi", "--workers", "2"]
        argv += ["--blocking-threads", "4", "--no-ws", "--host", LOOPBACK, "--port", str(port)]
        argv += ["--working-dir", str(APPS), "wsgi_floor:app"]
        extra = {"WSGI_FLOOR_MODELS": str(prep.model_dir)} if self.models_env else {}
        env = self.env(**extra)
        return self._server(prep, self.name, argv, env, [f"http://{LOOPBACK}:{port}/health"])


class WsgiEcho(WsgiFloor):
    """The WSGI echo floor: the same granian application answering a constant body."""

    name = "wsgi-echo"
    packages = ["granian"]
    models_env = False
    checks_predictions = False


CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Mlserve(),
        MlserveColumnar(),
        MlserveV2Binary(),
        MLServer(),
        BentoML(),
        MLflow(),
        FastAPIApp(),
        Floor(),
        Echo(),
        WsgiFloor(),
        WsgiEcho(),
    )
}
PEERS = ("mlserver", "bentoml", "mlflow")
FLOORS = ("floor", "echo", "wsgi-floor", "wsgi-echo")
