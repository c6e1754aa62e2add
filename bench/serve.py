"""Serving side by side: mlserve vs MLServer, BentoML, MLflow, a FastAPI app and the floor.

Usage::

    .venv/bin/python bench/serve.py --quick            # c=16, 1-row payloads, 3 s runs
    .venv/bin/python bench/serve.py                    # the full matrix (20-30 min, 2 cores)
    .venv/bin/python bench/serve.py --contenders mlserve,fastapi --models linear_regression
    .venv/bin/python bench/serve.py --contenders mlserve,floor,echo --rows 1 --concurrency 16,64
    .venv/bin/python bench/serve.py --contenders mlserve,mlserve-columnar,mlserve-v2 --rows 1000

Trains linear_regression, gradient_boosting and random_forest (100 trees) on
california_housing.csv through mlserve itself, exports the very same fitted
pipelines with joblib for the peers, installs each peer into its own virtualenv
(``bench/.work/venvs/<name>``, reused), starts every server on loopback with 2
workers, checks its predictions, and drives them with wrk (``apt-get install
wrk``) at each concurrency and payload size, contender after contender for each
point in a rotating order. The floor contenders (``floor``: a bare asyncio
responder running the version's own ONNX graph; ``echo``: the same answering a
constant body; ``bench/contenders/floor_app.py``; ``wsgi-floor`` and ``wsgi-echo``: the same
two as a bare WSGI application on granian, run as mlserve runs,
``bench/contenders/wsgi_floor.py``) show what is left to gain: the report prints
mlserve / floor. Two more mlserve servers take other bodies
(``mlserve-columnar``: the v1 route's ``{"inputs": {feature: [values]}}``;
``mlserve-v2``: the V2 route with binary tensors), for the 1,000-row targets of
each body against ONNX Runtime in process. Prints Markdown tables (req/s, p50, p99, errors,
server CPU), the target ratios with PASS/FAIL, and writes everything as JSON to
``--out``. The load generator and the servers share the machine's cores.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from serve_contenders import (
    CONTENDERS,
    MLSERVE_ENV,
    WORK,
    Contender,
    Prepared,
    package_versions,
)
from serve_load import (
    WRK_SCRIPT,
    LoadResult,
    Server,
    free_port,
    http_call,
    install_signal_handlers,
    measure,
    running,
    wait_idle,
    wrk,
    wrk_path,
)
from serve_models import (
    ALGORITHMS,
    DATA,
    export,
    inprocess,
    load_models,
    log,
    records,
    train_models,
)
from serve_report import machine_description, markdown_report, ratios

from mlserve.training.signature import model_frame

REPO = Path(__file__).resolve().parents[1]
CHECK_ROWS = 100


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(item) for item in text.split(",") if item]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="c=16, 1 row, 3 s runs")
    names = [*CONTENDERS, "health"]
    parser.add_argument(
        "--contenders", type=_csv(str), default=None, help=f"comma-separated: {','.join(names)}"
    )
    parser.add_argument(
        "--models", type=_csv(str), default=None, help=f"comma-separated: {','.join(ALGORITHMS)}"
    )
    parser.add_argument("--concurrency", type=_csv(int), default=None, help="e.g. 1,16,64")
    parser.add_argument("--rows", type=_csv(int), default=None, help="e.g. 1,100,1000")
    parser.add_argument("--duration", type=int, default=None, help="seconds per run (5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before each run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds over every point, the order rotated each time; the report keeps "
        "each point's median (1)",
    )
    parser.add_argument("--mlserve-server", default=None, help="passed as mlserve --server")
    parser.add_argument(
        "--mlserve-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="setting for every mlserve process, e.g. MLSERVE_AUTH=false (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=WORK / "serve-results.json")
    parser.add_argument("--keep", action="store_true", help="keep the run's work folder")
    parser.add_argument(
        "--report", type=Path, default=None, help="print the report of a saved JSON and exit"
    )
    args = parser.parse_args(argv)
    args.contenders = args.contenders or names
    args.models = args.models or list(ALGORITHMS)
    args.concurrency = args.concurrency or ([16] if args.quick else [1, 16, 64])
    args.rows = args.rows or ([1] if args.quick else [1, 100, 1000])
    args.duration = args.duration or (3 if args.quick else 5)
    for name in args.contenders:
        if name not in names:
            parser.error(f"unknown contender {name!r}; choose from {', '.join(names)}")
    for name in args.models:
        if name not in ALGORITHMS:
            parser.error(f"unknown model {name!r}; choose from {', '.join(ALGORITHMS)}")
    return args


def check(
    contender: Contender,
    base: str,
    model: str,
    body: bytes,
    expected: np.ndarray,
    headers: dict[str, str],
) -> dict[str, Any]:
    """POST one prediction and compare it with the in-process pipeline's."""
    status, answer = http_call(base + contender.path(model), body, headers)
    result: dict[str, Any] = {"contender": contender.name, "model": model, "status": status}
    if not contender.checks_predictions:  # a constant answer: only the status counts
        result["ok"] = status == 200
        result["detail"] = "constant answer, predictions not compared"
        return result
    try:
        got = np.asarray(contender.predictions(json.loads(answer)), dtype=float)
        result["max_abs_diff"] = float(np.max(np.abs(got - expected)))
        result["ok"] = status == 200 and bool(np.allclose(got, expected, rtol=1e-6, atol=1e-6))
    except Exception as exc:
        result["ok"] = False
        result["detail"] = f"{type(exc).__name__}: {exc}; answer {answer[:300]!r}"
    return result


@dataclass
class Live:
    """A started server with the models it answered correctly."""

    contender: Contender
    server: Server
    base: str
    models: list[str]
    headers: dict[str, str]


class Bench:
    """One invocation: prepared models, payloads and everything measured.

    Every server is started first (idle ones cost nothing), then each point
    (model, rows, concurrency) is measured on every contender back to back, in
    an order that rotates from point to point: load from anything else on the
    machine falls on all contenders alike instead of on the last ones started.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        prep: Prepared,
        loaded: dict[str, dict[str, Any]],
        features: pd.DataFrame,
        failures: list[str],
    ) -> None:
        self.args = args
        self.prep = prep
        self.loaded = loaded
        self.features = features
        inputs = next(iter(loaded.values()))["view"]["signature"]["inputs"]
        self.numeric = {spec["name"] for spec in inputs if spec["type"] != "string"}
        self.script = prep.run_dir / "post.lua"
        self.script.write_text(WRK_SCRIPT)
        self.runs: list[dict[str, Any]] = []
        self.round = 0
        self.checks: list[dict[str, Any]] = []
        self.failures = failures
        self.inproc: dict[str, dict[str, Any]] = {}

    def time_inprocess(self, model: str, when: str) -> None:
        """Time one 1,000-row prediction of ``model`` in this process (see ``inprocess``)."""
        log(f"[inprocess] {model}: batch prediction of 1,000 rows in this process ({when})")
        self.inproc[model] = inprocess(self.loaded[model], self.features.head(1000))
        self.inproc[model]["measured"] = when
        self.inproc[model]["load_1min"] = round(os.getloadavg()[0], 2)

    def body_file(self, contender: Contender, model: str, rows: int) -> Path:
        """Write (once) and return the request body file for wrk."""
        path = self.prep.run_dir / "bodies" / f"{contender.name}-{model}-{rows}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(contender.body(model, records(self.features.head(rows)), self.numeric))
        return path

    def record(
        self,
        contender: str,
        model: str | None,
        rows: int | None,
        conc: int,
        result: LoadResult,
        paired_with: str | None = None,
    ) -> None:
        """Keep one run's figures (with the machine's load average) and log them.

        ``paired_with`` names the model whose mlserve runs a ``/health`` run
        was timed next to.
        """
        run = {"contender": contender, "model": model, "rows": rows, "concurrency": conc}
        run.update(vars(result), load_1min=round(os.getloadavg()[0], 2), round=self.round)
        if paired_with is not None:
            run["paired_with"] = paired_with
        self.runs.append(run)
        log(
            f"  {contender:<9} {model or '-':<18} rows={rows or '-':<5} c={conc:<3} "
            f"{run['rps']:9.1f} req/s  p50 {run['p50_ms']:8.2f} ms  p99 {run['p99_ms']:8.2f} ms"
            f"  errors {run['errors']}  cpu {run['cpu_percent']:.0f}%  load {run['load_1min']}"
        )

    def start(self, stack: ExitStack, contender: Contender, models: list[str]) -> Live:
        """Start a server for ``models`` (stopped when ``stack`` closes), check and prime it."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = contender.server(self.prep, models, port)
        log(f"[{server.name}] starting: {' '.join(server.argv)}")
        stack.enter_context(running(server))
        headers = contender.headers(self.prep)
        good = []
        for model in models:
            head = self.features.head(CHECK_ROWS)
            signature = self.loaded[model]["view"]["signature"]
            expected = self.loaded[model]["pipeline"].predict(model_frame(head, signature))
            body = contender.body(model, records(head), self.numeric)
            result = check(contender, base, model, body, expected, headers)
            self.checks.append(result)
            log(f"[{server.name}] check {model}: {'ok' if result['ok'] else result}")
            if not result["ok"]:
                self.failures.append(f"{contender.name} {model}: wrong or no predictions")
                continue
            good.append(model)
            # Load the model in every worker before anything is timed.
            body_file = self.body_file(contender, model, 1)
            wrk(base + contender.path(model), self.script, body_file, 8, 2, headers)
        wait_idle(server)
        return Live(contender, server, base, good, headers)

    def start_all(self, stack: ExitStack, selected: list[Contender]) -> list[Live]:
        """Start every contender's servers; a failure is recorded and the others go on."""
        live = []
        for contender in selected:
            groups = [[m] for m in self.args.models] if contender.per_model else [self.args.models]
            for models in groups:
                try:
                    live.append(self.start(stack, contender, models))
                except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
                    self.failures.append(f"{contender.name} {','.join(models)}: {exc}")
                    log(f"[{contender.name}] FAILED: {exc}")
                    log(traceback.format_exc())
        return live

    def health(self, mlserve: Live, conc: int, paired_with: str | None) -> None:
        """Time mlserve's ``GET /health`` (no key needed) at concurrency ``conc``."""
        args = self.args
        url = mlserve.base + "/health"
        result = measure(mlserve.server, url, self.script, None, conc, args.duration, args.warmup)
        self.record("health", None, None, conc, result, paired_with)

    def measure_all(self, live: list[Live]) -> None:
        """Time every point on every live server, rotating the order, ``--rounds`` times.

        mlserve's ``/health`` is timed right after mlserve's smallest-payload
        runs, on the same server, so that both see the same machine load.
        """
        args = self.args
        mlserve = next((item for item in live if item.contender.name == "mlserve"), None)
        with_health = mlserve is not None and "health" in args.contenders
        timed = [item for item in live if item.contender.name in args.contenders]
        if with_health and mlserve not in timed:  # /health alone
            for conc in args.concurrency:
                self.health(mlserve, conc, None)
        points = [(m, r, c) for m in args.models for r in args.rows for c in args.concurrency]
        for self.round in range(args.rounds):
            if args.rounds > 1:
                log(f"[round {self.round + 1} of {args.rounds}]")
            for index, point in enumerate(points):
                self.measure_point(timed, mlserve if with_health else None, index, *point)

    def measure_point(
        self, timed: list[Live], mlserve: Live | None, index: int, model: str, rows: int, conc: int
    ) -> None:
        """Time one point on every live server, the order shifted by point and round.

        ``mlserve`` (when /health is timed too) gets its ``/health`` run next to it.
        """
        args = self.args
        if rows == 1000 and conc == min(args.concurrency) and self.round == 0:
            # Again, next to the runs it is compared with: the machine's load drifts.
            self.time_inprocess(model, "next to the 1,000-row runs")
        shift = (index + self.round) % len(timed) if timed else 0
        for item in timed[shift:] + timed[:shift]:
            if model not in item.models:
                continue
            body = self.body_file(item.contender, model, rows)
            url = item.base + item.contender.path(model)
            result = measure(
                item.server,
                url,
                self.script,
                body,
                conc,
                args.duration,
                args.warmup,
                item.headers,
            )
            self.record(item.contender.name, model, rows, conc, result)
            if mlserve is not None and item is mlserve and rows == min(args.rows):
                self.health(item, conc, model)

    def run(self, selected: list[Contender]) -> None:
        """Start every server, measure, and stop them all (errors and Ctrl-C included)."""
        with ExitStack() as stack:
            live = self.start_all(stack, selected)
            self.measure_all(live)
        self.every_round = self.runs
        self.runs = median_runs(self.runs)


def median_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per point: the round with the median req/s, with median p50 and p99.

    Errors are summed over the rounds; ``rps_rounds`` lists every round's req/s.
    A point measured once is kept as it is.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        key = (run["contender"], run["model"], run["rows"], run["concurrency"])
        groups.setdefault((*key, run.get("paired_with")), []).append(run)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        ranked = sorted(group, key=lambda r: r["rps"])
        run = dict(ranked[(len(ranked) - 1) // 2])
        run["rps"] = float(np.median([r["rps"] for r in group]))
        run["p50_ms"] = float(np.median([r["p50_ms"] for r in group]))
        run["p99_ms"] = float(np.median([r["p99_ms"] for r in group]))
        run["errors"] = sum(r["errors"] for r in group)
        run["rps_rounds"] = [round(r["rps"], 1) for r in group]
        run["rounds"] = len(group)
        del run["round"]
        out.append(run)
    return out


def mlserve_server(flag: str | None) -> str:
    """The WSGI server ``mlserve serve`` runs: the flag given, else its default."""
    if flag:
        return f"{flag} (--server {flag})"
    from mlserve.settings import Settings

    return f"{getattr(Settings(), 'server', 'gunicorn')} (mlserve's default)"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 (the report says PASS/FAIL, not the exit status)."""
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        saved["ratios"] = ratios(saved)
        print(markdown_report(saved))
        return 0
    install_signal_handlers()
    wrk_path()
    if not DATA.exists():
        raise SystemExit(f"missing data file {DATA}")
    run_dir = WORK / "runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    overrides = dict(item.split("=", 1) for item in args.mlserve_env)
    prep = Prepared(
        run_dir,
        run_dir / "mlserve-home",
        run_dir / "models",
        args.mlserve_server,
        {**MLSERVE_ENV, **overrides},
    )
    started = time.time()
    load_before = round(os.getloadavg()[0], 2)
    ok = False
    try:
        selected = [c for c in CONTENDERS.values() if c.name in args.contenders]
        if "health" in args.contenders and "mlserve" not in args.contenders:
            selected.insert(0, CONTENDERS["mlserve"])
        venvs, failures = {}, []
        for contender in selected:  # install the peers before anything is timed
            try:
                venvs[contender.name] = contender.venv()
            except (RuntimeError, subprocess.SubprocessError) as exc:
                failures.append(f"{contender.name}: install failed: {exc}")
                log(f"[setup] {failures[-1]}")
        frame = pd.read_csv(DATA)
        views = train_models(prep, args.models)
        loaded = load_models(prep, views)
        signature = next(iter(views.values()))["signature"]
        features = frame[[spec["name"] for spec in signature["inputs"]]]
        export(prep, loaded, features)
        bench = Bench(args, prep, loaded, features, failures)
        for name in loaded:
            bench.time_inprocess(name, "before the servers start")
        bench.run([c for c in selected if c.name in venvs])
        stack = ["scikit-learn", "numpy", "pandas"]
        versions = {
            name: package_versions(venv / "bin" / "python", [*CONTENDERS[name].packages, *stack])
            for name, venv in venvs.items()
        }
        report = {
            "command": " ".join([os.path.relpath(sys.executable, REPO), *sys.argv]),
            "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
            "minutes": round((time.time() - started) / 60, 1),
            "machine": machine_description(),
            "load_before": load_before,
            "mlserve_server": mlserve_server(args.mlserve_server),
            "mlserve_env": prep.mlserve_env,
            "mlserve_api_key": prep.api_key is not None,
            "versions": versions,
            "config": {k: v for k, v in vars(args).items() if k not in ("out", "keep", "report")},
            "models": {
                n: {
                    "algorithm": v["algorithm"],
                    "runtime": v.get("runtime"),
                    "serving": v.get("serving"),
                }
                for n, v in views.items()
            },
            "inprocess": bench.inproc,
            "checks": bench.checks,
            "runs": bench.runs,
            "every_round": bench.every_round,
            "failures": bench.failures,
        }
        report["ratios"] = ratios(report)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(markdown_report(report))
        log(f"[done] JSON written to {args.out}")
        ok = not bench.failures
    finally:
        if ok and not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log(f"[work] kept {run_dir} (logs in {run_dir / 'logs'})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("[interrupted] every server was stopped")
        sys.exit(130)
