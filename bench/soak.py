"""Soak test: minutes of mixed traffic against ``mlserve serve --workers 2``.

Usage::

    .venv/bin/python bench/soak.py --quick                      # 1 minute, granian
    .venv/bin/python bench/soak.py --quick --server gunicorn
    .venv/bin/python bench/soak.py --minutes 30 --json soak.json

Starts ``mlserve serve --workers 2`` (granian or gunicorn, with its embedded job
worker) on a free loopback port with a temporary home and an admin key made by
``mlserve keys create --role admin``, trains two ``housing`` versions on
``california_housing.csv`` (read from ``../shared/datasets``, never copied), then
drives it from threads with one ``httpx.Client`` each:

* predictors: single-row (80%) and 100-row (20%) predictions of ``housing``,
  paced to ``--rate`` requests/s in all (moderate: the machine has 2 cores);
* a trainer: every ``--train-every`` seconds, uploads a random slice of the CSV
  (500-2,000 rows), trains a fast model (linear_regression, ridge, a depth-6
  decision_tree) as ``soak_small``, waits for it and moves its ``production``
  alias to the new version;
* an operator: twice a second one of: reads (models, versions, datasets, jobs,
  readiness), a prediction of ``soak_small``, a ``housing`` alias move between
  versions 1 and 2, or an invalid request whose 4xx answer is known in advance
  (422, 404, 400, 413, 401).

A warm-up (all of the above) runs first; then memory is sampled, the measured
phase runs for ``--minutes``, and memory is sampled again. Memory is the sum of
VmRSS over the server's process tree (the ``mlserve serve`` process, its HTTP
workers and the job worker) read from /proc, both times with the load stopped
and no training job running. ``model_cache_size`` is 4 so the LRU model cache
reaches its steady state during the warm-up.

Exit status 1 if any request got a 5xx, a connection error or an answer other
than the one expected (a 4xx counts as a failure unless it is one of the invalid
requests' expected answers), if a training job failed, or if memory grew by 10%
or more; 0 otherwise.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CALIFORNIA = DATASETS / "california_housing.csv"
TARGET = "median_house_value"
BATCH_ROWS = 100
MAX_BATCH_ROWS = 1_000  # the server's limit, so that a 413 is cheap to provoke
MEMORY_GROWTH_LIMIT_PCT = 10.0


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``mlserve serve`` in its own session, killed with its whole process group."""

    def __init__(self, server: str, workers: int, threads: int) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mlserve-soak-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MLSERVE_HOME": str(self.home),
            "MLSERVE_LOG_LEVEL": "WARNING",
            "MLSERVE_ACCESS_LOG": "false",
            "MLSERVE_MAX_BATCH_ROWS": str(MAX_BATCH_ROWS),
            "MLSERVE_MODEL_CACHE_SIZE": "4",
            "OMP_NUM_THREADS": "1",
        }
        self.command = [
            sys.executable,
            "-m",
            "mlserve",
            "serve",
            "--port",
            str(self.port),
            "--server",
            server,
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
        self.log = self.home / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""

    def start(self, timeout_s: float = 120) -> None:
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlserve",
                "keys",
                "create",
                "--role",
                "admin",
                "--name",
                "soak",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.key = created.stdout.strip().splitlines()[-1]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"server not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid  # a session leader: its pid is its group id
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(10)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def memory(self) -> dict[str, Any]:
        """VmRSS (and PSS, which does not count shared pages twice) over the tree, in MiB."""
        assert self.process is not None
        pids = process_tree(self.process.pid)
        rss = {pid: _status_kib(pid, "VmRSS") for pid in pids}
        pss = sum(_rollup_kib(pid, "Pss") for pid in pids)
        roles: Counter[str] = Counter()
        for pid, kib in rss.items():
            roles[_role(pid, self.process.pid)] += kib
        return {
            "processes": len(pids),
            "rss_mib": sum(rss.values()) / 1024,
            "pss_mib": pss / 1024,
            "rss_mib_by_role": {role: round(kib / 1024, 1) for role, kib in sorted(roles.items())},
        }


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc/<pid>/task/<tid>/children."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                queue.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _role(pid: int, root: int) -> str:
    """``serve`` (the main process), ``job_worker`` or ``http`` (an HTTP worker)."""
    if pid == root:
        return "serve"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return "gone"
    return "job_worker" if b"--parent-pid" in command else "http"


def _status_kib(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def _rollup_kib(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except (FileNotFoundError, PermissionError):
        pass
    return 0


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Stats:
    """Every request's outcome, by kind; prediction latencies in ms."""

    requests: Counter[str] = field(default_factory=Counter)
    expected_4xx: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    jobs: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(
        self,
        kind: str,
        send: Callable[[], httpx.Response],
        expected: int = 200,
        timed: bool = False,
    ) -> httpx.Response | None:
        """Send one request; record its outcome against the status ``expected``."""
        started = time.perf_counter()
        try:
            response = send()
        except httpx.HTTPError as exc:
            self._record(kind, f"{kind}: {type(exc).__name__}: {exc}")
            return None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code != expected:
            status = response.status_code
            self._record(kind, f"{kind}: {status} (expected {expected}) {response.text[:200]}")
            return None
        with self.lock:
            self.requests[kind] += 1
            if 400 <= expected < 500:
                self.expected_4xx[f"{kind} {expected}"] += 1
            if timed:
                self.latencies.setdefault(kind, []).append(elapsed_ms)
        return response

    def job_ended(self, job: dict[str, Any]) -> None:
        with self.lock:
            self.jobs[job["status"]] += 1
            if job["status"] != "succeeded":
                self.failures.append(f"training job {job['status']}: {job['error']}")

    def _record(self, kind: str, message: str) -> None:
        with self.lock:
            self.requests[kind] += 1
            self.failures.append(message)

    def merge(self, other: Stats) -> None:
        self.requests.update(other.requests)
        self.expected_4xx.update(other.expected_4xx)
        self.failures.extend(other.failures)
        self.jobs.update(other.jobs)
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --------------------------------------------------------------------------- the traffic


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    features = frame.drop(columns=[TARGET])
    rows: list[dict[str, Any]] = (
        features.astype(object).where(features.notna(), None).to_dict(orient="records")
    )
    return rows


def wait_for_job(http: httpx.Client, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = http.get(f"/api/v1/training-jobs/{job_id}")
        if response.status_code == 200 and response.json()["status"] in ("succeeded", "failed"):
            job: dict[str, Any] = response.json()
            return job
        time.sleep(0.25)
    raise TimeoutError(f"job {job_id} did not finish in {timeout_s} s")


def train(http: httpx.Client, dataset_id: str, algorithm: str, model: str, **extra: Any) -> Any:
    body = {
        "dataset_id": dataset_id,
        "target": TARGET,
        "algorithm": algorithm,
        "model_name": model,
        "cv_folds": 0,
        **extra,
    }
    response = http.post("/api/v1/training-jobs", json=body)
    response.raise_for_status()
    return wait_for_job(http, response.json()["id"])


def setup(server: Server, frame: pd.DataFrame) -> str:
    """``housing`` v1 (linear_regression) and v2 (depth-8 tree) on the whole data,
    production on v1; ``soak_small`` v1 on a slice."""
    with server.client() as http:
        upload = http.post(
            "/api/v1/datasets",
            files={"file": ("california_housing.csv", CALIFORNIA.read_bytes())},
        )
        upload.raise_for_status()
        dataset = upload.json()["id"]
        for algorithm, params in (("linear_regression", {}), ("decision_tree", {"max_depth": 8})):
            job = train(http, dataset, algorithm, "housing", params=params)
            if job["status"] != "succeeded":
                raise RuntimeError(f"setup training failed: {job}")
        http.put("/api/v1/models/housing/aliases/production", json={"version": 1})
        small = http.post(
            "/api/v1/datasets", files={"file": ("slice.csv", csv_bytes(frame.head(1000)))}
        )
        small.raise_for_status()
        if train(http, small.json()["id"], "ridge", "soak_small")["status"] != "succeeded":
            raise RuntimeError("setup training of soak_small failed")
        return str(small.json()["id"])


class Load:
    """The threads of one phase; ``run(seconds)`` returns its stats."""

    def __init__(
        self, server: Server, frame: pd.DataFrame, small_dataset: str, args: argparse.Namespace
    ) -> None:
        self.server = server
        self.small_dataset = small_dataset
        self.frame = frame
        self.rows = instances(frame)
        self.args = args
        self.housing_version = 1

    def run(self, seconds: float) -> Stats:
        stats = Stats()
        stop = threading.Event()
        threads = [
            threading.Thread(target=self._predictor, args=(i, stats, stop), daemon=True)
            for i in range(self.args.clients)
        ]
        threads.append(threading.Thread(target=self._operator, args=(stats, stop), daemon=True))
        threads.append(threading.Thread(target=self._trainer, args=(stats, stop), daemon=True))
        for thread in threads:
            thread.start()
        stop.wait(seconds)
        stop.set()
        for thread in threads:
            thread.join(300)  # the trainer finishes the job it waits for
        return stats

    def _predictor(self, index: int, stats: Stats, stop: threading.Event) -> None:
        rng = random.Random(index)
        interval = self.args.clients / self.args.rate
        next_at = time.monotonic()
        with self.server.client() as http:
            while not stop.is_set():
                if rng.random() < 0.8:
                    kind, body = "predict_1", [self.rows[rng.randrange(len(self.rows))]]
                else:
                    start = rng.randrange(len(self.rows) - BATCH_ROWS)
                    kind, body = "predict_100", self.rows[start : start + BATCH_ROWS]
                stats.call(
                    kind,
                    lambda b=body: http.post(
                        "/api/v1/models/housing/predict", json={"instances": b}
                    ),
                    timed=True,
                )
                next_at = max(next_at + interval, time.monotonic())
                stop.wait(next_at - time.monotonic())

    def _operator(self, stats: Stats, stop: threading.Event) -> None:
        row = self.rows[0]
        missing = {k: v for k, v in row.items() if k != "median_income"}
        too_many = self.rows[: MAX_BATCH_ROWS + 1]

        def move_housing(http: httpx.Client) -> httpx.Response:
            self.housing_version = 3 - self.housing_version
            return http.put(
                "/api/v1/models/housing/aliases/production",
                json={"version": self.housing_version},
            )

        bad_key = self.server.client("mls_AAAAAAAA_" + "A" * 43)
        dataset = self.small_dataset
        ops: list[tuple[str, int, Callable[[httpx.Client], httpx.Response]]] = [
            ("read_models", 200, lambda h: h.get("/api/v1/models")),
            ("read_model", 200, lambda h: h.get("/api/v1/models/housing")),
            ("invalid_missing_feature", 422, lambda h: _predict(h, "housing", [missing])),
            ("read_versions", 200, lambda h: h.get("/api/v1/models/housing/versions")),
            ("predict_small", 200, lambda h: _predict(h, "soak_small", [row])),
            ("invalid_unknown_model", 404, lambda h: _predict(h, "nope", [row])),
            ("read_datasets", 200, lambda h: h.get("/api/v1/datasets")),
            ("alias_move", 200, move_housing),
            ("invalid_json", 400, lambda h: _raw_predict(h, b"{nope")),
            ("read_jobs", 200, lambda h: h.get("/api/v1/training-jobs")),
            ("invalid_version", 404, lambda h: _predict(h, "housing", [row], "?version=999")),
            ("ready", 200, lambda h: h.get("/ready")),
            ("invalid_too_many_rows", 413, lambda h: _predict(h, "housing", too_many)),
            ("invalid_upload", 422, lambda h: _upload(h, b"a,b\n1,2\n1,2,3\n")),
            ("invalid_algorithm", 422, lambda h: _train_request(h, "no_such_algorithm", dataset)),
            ("invalid_key", 401, lambda _h: _predict(bad_key, "housing", [row])),
        ]
        with self.server.client() as http, bad_key:
            turn = 0
            while not stop.wait(self.args.op_interval):
                kind, expected, send = ops[turn % len(ops)]
                stats.call(kind, lambda s=send: s(http), expected)
                turn += 1

    def _trainer(self, stats: Stats, stop: threading.Event) -> None:
        rng = np.random.default_rng(0)
        cycle = [
            ("linear_regression", {}),
            ("ridge", {"alpha": 1.0}),
            ("decision_tree", {"max_depth": 6}),
        ]
        turn = 0
        with self.server.client() as http:
            while not stop.is_set():
                started = time.monotonic()
                n_rows = int(rng.integers(500, 2001))
                part = self.frame.sample(n=n_rows, random_state=int(rng.integers(1 << 31)))
                uploaded = stats.call("upload", lambda p=part: _upload(http, csv_bytes(p)), 201)
                if uploaded is not None:
                    dataset_id = uploaded.json()["id"]
                    algorithm, params = cycle[turn % len(cycle)]
                    turn += 1
                    submitted = stats.call(
                        "train",
                        lambda a=algorithm, p=params, d=dataset_id: _train_request(http, a, d, p),
                        202,
                    )
                    if submitted is not None:
                        try:
                            job = wait_for_job(http, submitted.json()["id"])
                        except (TimeoutError, httpx.HTTPError) as exc:
                            job = {"status": "lost", "error": repr(exc)}
                        stats.job_ended(job)
                        if job["status"] == "succeeded":
                            stats.call(
                                "alias_move",
                                lambda v=job["model_version"]: http.put(
                                    "/api/v1/models/soak_small/aliases/production",
                                    json={"version": v},
                                ),
                            )
                stop.wait(self.args.train_every - (time.monotonic() - started))


def _predict(
    http: httpx.Client, model: str, rows: list[dict[str, Any]], query: str = ""
) -> httpx.Response:
    return http.post(f"/api/v1/models/{model}/predict{query}", json={"instances": rows})


def _raw_predict(http: httpx.Client, body: bytes) -> httpx.Response:
    return http.post(
        "/api/v1/models/housing/predict",
        content=body,
        headers={"Content-Type": "application/json"},
    )


def _upload(http: httpx.Client, data: bytes) -> httpx.Response:
    return http.post("/api/v1/datasets", files={"file": ("slice.csv", io.BytesIO(data))})


def _train_request(
    http: httpx.Client,
    algorithm: str,
    dataset_id: str = "0" * 32,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    body = {
        "dataset_id": dataset_id,
        "target": TARGET,
        "algorithm": algorithm,
        "model_name": "soak_small",
        "params": params or {},
        "cv_folds": 0,
    }
    return http.post("/api/v1/training-jobs", json=body)


# --------------------------------------------------------------------------- report


def report(
    args: argparse.Namespace,
    warmup: Stats,
    measured: Stats,
    memory: dict[str, dict[str, Any]],
    duration_s: float,
) -> dict[str, Any]:
    total = Stats()
    total.merge(warmup)
    total.merge(measured)
    start, end = memory["start"], memory["end"]
    growth = (end["rss_mib"] - start["rss_mib"]) / start["rss_mib"] * 100
    pss_growth = (
        (end["pss_mib"] - start["pss_mib"]) / start["pss_mib"] * 100 if start["pss_mib"] else 0.0
    )
    latency = {
        kind: {
            "count": len(values),
            "p50_ms": round(percentile(values, 50), 2),
            "p99_ms": round(percentile(values, 99), 2),
        }
        for kind, values in sorted(measured.latencies.items())
    }
    measured_requests = sum(measured.requests.values())
    return {
        "server": args.server,
        "workers": args.workers,
        "minutes": args.minutes,
        "measured_s": round(duration_s, 1),
        "requests_measured": measured_requests,
        "requests_per_s": round(measured_requests / duration_s, 1),
        "requests_total": sum(total.requests.values()),
        "requests_by_kind": dict(sorted(total.requests.items())),
        "expected_4xx": dict(sorted(total.expected_4xx.items())),
        "expected_4xx_total": sum(total.expected_4xx.values()),
        "failures_total": len(total.failures),
        "failures": total.failures[:50],
        "training_jobs": dict(total.jobs),
        "latency": latency,
        "memory": {
            "start": _rounded(start),
            "end": _rounded(end),
            "peak_rss_mib": round(memory["peak"]["rss_mib"], 1),
            "rss_growth_pct": round(growth, 2),
            "pss_growth_pct": round(pss_growth, 2),
        },
        "ok": not total.failures and growth < MEMORY_GROWTH_LIMIT_PCT,
    }


def _rounded(sample: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in sample.items()}


def print_report(result: dict[str, Any]) -> None:
    memory = result["memory"]
    print(
        f"\nsoak: {result['server']}, {result['workers']} workers, "
        f"{result['measured_s']} s measured"
    )
    print(
        f"requests: {result['requests_total']} in all, {result['requests_measured']} measured "
        f"({result['requests_per_s']}/s); expected 4xx: {result['expected_4xx_total']}; "
        f"failures (5xx, connection errors, unexpected answers): {result['failures_total']}"
    )
    print(f"training jobs: {result['training_jobs']}")
    for kind, figures in result["latency"].items():
        print(
            f"{kind}: {figures['count']} requests, p50 {figures['p50_ms']} ms, "
            f"p99 {figures['p99_ms']} ms"
        )
    print(
        f"memory (RSS, {memory['start']['processes']} processes): "
        f"{memory['start']['rss_mib']} MiB at start, {memory['end']['rss_mib']} MiB at end "
        f"({memory['rss_growth_pct']:+.2f}%), peak {memory['peak_rss_mib']} MiB; "
        f"PSS {memory['start']['pss_mib']} -> {memory['end']['pss_mib']} MiB "
        f"({memory['pss_growth_pct']:+.2f}%)"
    )
    print(
        f"RSS by process role, MiB: {memory['start']['rss_mib_by_role']} at start, "
        f"{memory['end']['rss_mib_by_role']} at end"
    )
    for failure in result["failures"][:20]:
        print(f"  FAILURE {failure}")
    print("PASS" if result["ok"] else "FAIL")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="measured phase (default 10)")
    parser.add_argument("--quick", action="store_true", help="1 minute measured, short warm-up")
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian")
    parser.add_argument("--workers", type=int, default=2, help="HTTP worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per HTTP worker")
    parser.add_argument("--clients", type=int, default=3, help="prediction threads")
    parser.add_argument("--rate", type=float, default=60.0, help="predictions/s, all clients")
    parser.add_argument("--op-interval", type=float, default=0.5, help="s between operator calls")
    parser.add_argument("--train-every", type=float, default=None, help="s between trainings")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--keep-home", action="store_true", help="keep the server's home")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if args.train_every is None:
        args.train_every = 10.0 if args.quick else 20.0
    if args.warmup is None:
        args.warmup = 30.0 if args.quick else 60.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CALIFORNIA.is_file():
        print(f"missing {CALIFORNIA}", file=sys.stderr)
        return 2
    frame = pd.read_csv(CALIFORNIA)
    server = Server(args.server, args.workers, args.threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        print(f"starting: {' '.join(server.command[1:])} (home {server.home})", flush=True)
        server.start()
        load = Load(server, frame, setup(server, frame), args)
        print(f"warm-up: {args.warmup:.0f} s", flush=True)
        warmup = load.run(args.warmup)
        time.sleep(1.0)
        memory = {"start": server.memory()}
        peak = dict(memory["start"])
        print(f"measured: {args.minutes:g} min; memory at start {memory['start']}", flush=True)
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(5.0):
                current = server.memory()
                if current["rss_mib"] > peak["rss_mib"]:
                    peak.update(current)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        measured = load.run(args.minutes * 60)
        duration_s = time.monotonic() - started
        sampling.set()
        sampler.join(10)
        time.sleep(1.0)
        memory["end"] = server.memory()
        memory["peak"] = peak
        if server.process is not None and server.process.poll() is not None:
            measured.failures.append(f"server exited with status {server.process.returncode}")
        result = report(args, warmup, measured, memory, duration_s)
        result["command"] = " ".join(["bench/soak.py", *(argv or sys.argv[1:])])
        print_report(result)
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2))
        return 0 if result["ok"] else 1
    finally:
        server.stop()
        if not args.keep_home:
            import shutil

            shutil.rmtree(server.home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
