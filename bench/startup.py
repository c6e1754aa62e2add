"""A replica's start-up and memory against the model floor's (issue 18, item 6).

Trains the three california defaults (linear_regression, random_forest with 100 trees,
gradient_boosting) through a temporary mlserve, points a ``production`` alias at each,
then starts ``mlserve serve --workers N`` again and again (``--rounds``) and records,
from the moment the process is started (``Popen``):

- ``health``: the first ``GET /health`` answered 200;
- ``first prediction``: the first one-row ``gradient_boosting`` prediction answered 200
  (polled every 10 ms, with an API key);
- ``ready``: the first ``GET /ready`` answered 200 (database, job worker, and the
  ``production`` versions preloaded: :mod:`mlserve.serving.preload`).

Once ready, every worker has answered 100 predictions per model, and the script reads
each process's VmRSS (``/proc/<pid>/status``) and whether scikit-learn, pandas,
pyarrow or SciPy is mapped into it (their shared libraries in ``/proc/<pid>/maps``: a
module imported once stays mapped). The model floor
(``bench/contenders/floor_app.py --mode model --processes 1``, the same three ONNX
graphs) is measured the same way: RSS after 100 predictions per model.

Usage::

    .venv/bin/python bench/startup.py [--workers 1,2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
from serve_contenders import APPS, MLSERVE_ENV, THREAD_ENV, WORK, Prepared
from serve_load import free_port, tree_pids
from serve_models import DATA, TARGET, export, load_models, log, records, train_models

MODELS = ["linear_regression", "random_forest", "gradient_boosting"]
HEAVY = {"sklearn": "/sklearn/", "pandas": "/pandas/", "pyarrow": "/pyarrow/", "scipy": "/scipy/"}


def call(url: str, body: bytes | None = None, key: str | None = None) -> int:
    """Status of a GET (or JSON POST); 0 when nothing answers."""
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` in MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def mapped(pid: int) -> list[str]:
    """Which of :data:`HEAVY` have files mapped into ``pid``."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    return sorted(name for name, part in HEAVY.items() if part in maps)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def set_aliases(prep: Prepared) -> None:
    """Point ``production`` at version 1 of every model (in process, on the same home)."""
    from mlserve.app import create_app
    from mlserve.settings import Settings

    app = create_app(Settings(home=prep.mlserve_home, preload_alias="", log_level="WARNING"))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {prep.api_key}"
    for name in MODELS:
        answer = client.put(f"/api/v1/models/{name}/aliases/production", json={"version": 1})
        if answer.status_code != 200:
            raise RuntimeError(f"alias of {name}: {answer.get_json()}")


def warm(base: str, bodies: dict[str, bytes], path: str, key: str | None, n: int = 100) -> None:
    for name, body in bodies.items():
        for _ in range(n):
            status = call(base + path.format(name=name), body, key)
            if status != 200:
                raise RuntimeError(f"{name}: status {status}")


def start_mlserve(prep: Prepared, workers: int, body: bytes) -> dict[str, Any]:
    """Start ``mlserve serve``, time health / first prediction / ready, then read RSS."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **THREAD_ENV, "MLSERVE_HOME": str(prep.mlserve_home), **prep.mlserve_env}
    mlserve = str(Path(sys.executable).parent / "mlserve")
    argv = [mlserve, "serve", "--workers", str(workers), "--port", str(port)]
    log_path = prep.run_dir / "logs" / f"startup-{workers}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    marks: dict[str, float] = {}
    with log_path.open("ab") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    predict = f"{base}/api/v1/models/gradient_boosting/predict"
    try:
        while len(marks) < 3:
            if proc.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError(f"mlserve did not get ready; see {log_path}")
            now = time.monotonic() - started
            if "health" not in marks and call(f"{base}/health") == 200:
                marks["health"] = now
            if "first" not in marks and call(predict, body, prep.api_key) == 200:
                marks["first"] = time.monotonic() - started
            if "ready" not in marks and call(f"{base}/ready") == 200:
                marks["ready"] = time.monotonic() - started
            time.sleep(0.01)
        pids = tree_pids(proc.pid)
        return {"marks": marks, "pids": list(pids), "proc": proc, "base": base}
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, 15)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(5)


def measure_mlserve(prep: Prepared, workers: int, bodies: dict[str, bytes]) -> dict[str, Any]:
    live = start_mlserve(prep, workers, bodies["gradient_boosting"])
    try:
        warm(live["base"], bodies, "/api/v1/models/{name}/predict", prep.api_key, 100 * workers)
        time.sleep(1.0)
        processes = []
        for pid in tree_pids(live["proc"].pid):
            line = cmdline(pid)
            role = "main" if pid == live["proc"].pid else "job worker"
            if pid != live["proc"].pid and " worker --parent-pid" not in line:
                role = "HTTP worker"
            processes.append({"role": role, "rss_mib": rss_mib(pid), "mapped": mapped(pid)})
        return {"workers": workers, **live["marks"], "processes": processes}
    finally:
        stop(live["proc"])


def measure_floor(prep: Prepared, bodies: dict[str, bytes]) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, str(APPS / "floor_app.py"), "--mode", "model"]
    argv += ["--models", str(prep.model_dir), "--port", str(port), "--processes", "1"]
    env = {**os.environ, **THREAD_ENV}
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while call(f"{base}/health") != 200:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the floor did not start")
            time.sleep(0.05)
        warm(base, bodies, "/predict/{name}", None)
        time.sleep(1.0)
        rss = {pid: rss_mib(pid) for pid in tree_pids(proc.pid)}
        return {"rss_mib": max(rss.values()), "processes": sorted(rss.values())}
    finally:
        stop(proc)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir = WORK / f"startup-{time.strftime('%Y%m%d-%H%M%S')}"
    prep = Prepared(
        run_dir=run_dir,
        mlserve_home=run_dir / "home",
        model_dir=run_dir / "models",
        mlserve_server=None,
        mlserve_env=dict(MLSERVE_ENV),
    )
    views = train_models(prep, MODELS)
    set_aliases(prep)
    features = pd.read_csv(DATA).drop(columns=[TARGET])
    export(prep, load_models(prep, views), features)
    row = json.dumps({"instances": records(features.head(1))}).encode()
    bodies = dict.fromkeys(MODELS, row)
    floor = measure_floor(prep, bodies)
    log(f"[floor] RSS {floor['rss_mib']:.1f} MiB")
    results = []
    for workers in [int(w) for w in args.workers.split(",")]:
        for round_ in range(args.rounds):
            result = measure_mlserve(prep, workers, bodies)
            log(f"[mlserve {workers}w #{round_ + 1}] {json.dumps(result)}")
            results.append(result)
    print(report(results, floor))
    return 0


def report(results: list[dict[str, Any]], floor: dict[str, Any]) -> str:
    lines = [
        f"model floor (1 process, 3 graphs loaded): RSS {floor['rss_mib']:.1f} MiB",
        "",
        "| workers | health s | first prediction s | ready s | HTTP worker RSS MiB "
        "| / floor | main RSS MiB | mapped in HTTP workers |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for workers in sorted({r["workers"] for r in results}):
        runs = [r for r in results if r["workers"] == workers]
        http = [p for r in runs for p in r["processes"] if p["role"] == "HTTP worker"]
        main_rss = [p["rss_mib"] for r in runs for p in r["processes"] if p["role"] == "main"]
        worker_rss = statistics.median(p["rss_mib"] for p in http)
        heavy = sorted({m for p in http for m in p["mapped"]}) or ["none"]
        lines.append(
            f"| {workers} | {statistics.median(r['health'] for r in runs):.2f} "
            f"| {statistics.median(r['first'] for r in runs):.2f} "
            f"| {statistics.median(r['ready'] for r in runs):.2f} | {worker_rss:.1f} "
            f"| {worker_rss / floor['rss_mib']:.2f} | {statistics.median(main_rss):.1f} "
            f"| {', '.join(heavy)} |"
        )
    lines.append("")
    rounds = len(results) // max(len({r["workers"] for r in results}), 1)
    lines.append(f"medians of {rounds} starts per worker count")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
