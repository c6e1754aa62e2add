"""Machine description, target ratios and the Markdown report of ``bench/serve.py``."""

from __future__ import annotations

import operator
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serve_contenders import FLOORS, PEERS

REPO = Path(__file__).resolve().parents[1]
CALIFORNIA_PIPELINES = ("linear_regression", "gradient_boosting")
SAME_BOX = (
    "Same box: wrk (1 thread) and the server share the machine's {cores} cores, so every "
    "figure is lower than on a dedicated server, and the load generator's CPU is taken from "
    "the server's. Compare ratios, not absolute numbers."
)


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def _command(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    except OSError:
        return "?"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def machine_description() -> dict[str, Any]:
    """CPU model, core count, OS, Python, wrk version and the repository's commit."""
    cpu = _cpuinfo()
    return {
        "cpu": cpu.get("model name", platform.processor() or "?"),
        "cpu_family_model": f"family {cpu.get('cpu family', '?')} model {cpu.get('model', '?')}",
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "wrk": _command(["wrk", "-v"]).split(" Copyright")[0],
        "mlserve_commit": _command(["git", "describe", "--always", "--dirty"]),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _find(
    runs: list[dict[str, Any]], contender: str, model: str | None, rows: int | None, conc: int
) -> dict[str, Any] | None:
    for run in runs:
        if (run["contender"], run["model"], run["rows"], run["concurrency"]) == (
            contender,
            model,
            rows,
            conc,
        ):
            return run
    return None


def _health(runs: list[dict[str, Any]], model: str, conc: int) -> dict[str, Any] | None:
    """The /health run timed next to ``model``'s runs at ``conc``, else any at ``conc``."""
    found = [r for r in runs if r["contender"] == "health" and r["concurrency"] == conc]
    paired = [r for r in found if r.get("paired_with") == model]
    return (paired or found or [None])[0]


# 1,000-row requests against one in-process batch prediction (issue 18, item 4): the
# records body of the v1 route, its columnar body, and V2 binary tensors.
BATCH_TARGETS = (
    ("mlserve", "records", 0.5),
    ("mlserve-columnar", "columnar", 0.8),
    ("mlserve-v2", "V2 binary", 0.8),
)


def _batch_target(
    report: dict[str, Any],
    runs: list[dict[str, Any]],
    contender: str,
    body: str,
    model: str,
    goal: float,
) -> dict[str, Any]:
    """``contender``'s rows/s on 1,000-row requests (lowest concurrency measured) over
    the in-process batch rows/s of the version's runtime."""
    batch = sorted(
        (r for r in runs if (r["contender"], r["model"], r["rows"]) == (contender, model, 1000)),
        key=lambda r: r["concurrency"],
    )
    inproc = report["inprocess"].get(model)
    value, detail = None, ""
    if batch and inproc:
        served = batch[0]["rps"] * 1000
        value = served / inproc["rows_per_s"]
        detail = f"c={batch[0]['concurrency']}, {served:,.0f} rows/s vs {inproc['runtime']}"
        if inproc["onnx_rows_per_s"] and inproc["rows_per_s"] != inproc["onnx_rows_per_s"]:
            detail += f"; vs ONNX in-process: {served / inproc['onnx_rows_per_s']:.2f}"
        if inproc["rows_per_s"] != inproc["sklearn_rows_per_s"]:
            detail += f"; vs sklearn in-process: {served / inproc['sklearn_rows_per_s']:.2f}"
    name = f"{contender} rows/s / in-process batch rows/s (1,000 rows, {body})"
    return _target(name, model, value, goal, operator.ge, detail=detail)


def _target(
    name: str,
    model: str | None,
    value: float | None,
    goal: float | None,
    better: Callable[[float, float], bool],
    applies: bool = True,
    detail: str = "",
) -> dict[str, Any]:
    sign = ">=" if better(1.0, 0.0) else "<="
    if value is None:
        result = "n/a"
    elif not applies or goal is None:
        result = "info"
    else:
        result = "PASS" if better(value, goal) else "FAIL"
    return {
        "target": name,
        "model": model,
        "value": value,
        "goal": "-" if goal is None else f"{sign} {goal:g}",
        "result": result,
        "detail": detail,
    }


def ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of the serving issue, each with its value and PASS/FAIL/n/a.

    Ratios of requests per second use single-row requests at concurrency 16
    with the same model; the p50 ratio uses concurrency 1; the batch ratio
    compares mlserve's rows/s on 1,000-row requests (lowest concurrency
    measured) with one in-process batch prediction.
    """
    runs = report["runs"]
    at_least = lambda v, g: v >= g  # noqa: E731
    at_most = lambda v, g: v <= g  # noqa: E731
    out = []
    for model in report["models"]:
        health16 = _health(runs, model, 16)
        health1 = _health(runs, model, 1)
        ours = _find(runs, "mlserve", model, 1, 16)
        peers = [(p, _find(runs, p, model, 1, 16)) for p in PEERS]
        measured = [(p, r) for p, r in peers if r is not None]
        value = detail = None
        if ours and measured:
            best_name, best = max(measured, key=lambda item: item[1]["rps"])
            value = ours["rps"] / best["rps"] if best["rps"] else None
            detail = f"best peer: {best_name} {best['rps']:.0f} req/s"
        out.append(
            _target(
                "mlserve / best of MLServer, BentoML, MLflow (req/s, 1 row, c=16)",
                model,
                value,
                5,
                at_least,
                applies=model in CALIFORNIA_PIPELINES,
                detail=detail or "",
            )
        )
        fastapi = _find(runs, "fastapi", model, 1, 16)
        value = ours["rps"] / fastapi["rps"] if ours and fastapi and fastapi["rps"] else None
        out.append(_target("mlserve / FastAPI app (req/s, 1 row, c=16)", model, value, 2, at_least))
        value = ours["rps"] / health16["rps"] if ours and health16 and health16["rps"] else None
        out.append(
            _target(
                "mlserve predict / mlserve /health (req/s, 1 row, c=16)",
                model,
                value,
                0.7,
                at_least,
            )
        )
        for floor, label in zip(
            FLOORS,
            ("model floor", "echo floor", "WSGI model floor", "WSGI echo floor"),
            strict=True,
        ):
            run = _find(runs, floor, model, 1, 16)
            value = ours["rps"] / run["rps"] if ours and run and run["rps"] else None
            detail = f"{label} {run['rps']:.0f} req/s" if run else ""
            out.append(
                _target(
                    f"mlserve / {label} (req/s, 1 row, c=16)",
                    model,
                    value,
                    None,
                    at_least,
                    detail=detail,
                )
            )
        ours1 = _find(runs, "mlserve", model, 1, 1)
        value = (
            ours1["p50_ms"] / health1["p50_ms"] if ours1 and health1 and health1["p50_ms"] else None
        )
        out.append(
            _target("mlserve predict p50 / /health p50 (1 row, c=1)", model, value, 2, at_most)
        )
        for contender, body, goal in BATCH_TARGETS:
            out.append(_batch_target(report, runs, contender, body, model, goal))
    order = list(dict.fromkeys(item["target"] for item in out))
    out.sort(key=lambda item: order.index(item["target"]))  # grouped by target, stable
    errors = sum(r["errors"] for r in runs)
    bad_checks = sum(not c["ok"] for c in report["checks"])
    out.append(
        _target(
            "errors (non-2xx + socket errors, all runs) + failed checks and starts",
            None,
            float(errors + bad_checks + len(report["failures"])),
            0,
            at_most,
            detail=f"{errors} request errors in {len(runs)} runs, {bad_checks} failed checks",
        )
    )
    return out


def _settings(env: dict[str, str] | None) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in (env or {}).items()) or "defaults"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pivot(report: dict[str, Any], title: str, cell: Callable[[dict[str, Any]], str]) -> list[str]:
    """One row per (model, rows, concurrency), one column per contender."""
    runs = [r for r in report["runs"] if r["contender"] != "health"]
    paired = [r for r in report["runs"] if r.get("paired_with")]
    contenders = list(dict.fromkeys(r["contender"] for r in runs))
    points = list(dict.fromkeys((r["model"], r["rows"], r["concurrency"]) for r in runs))
    columns = [*contenders, "mlserve /health"] if paired else contenders
    lines = [
        f"{title}:",
        "",
        "| model | rows | conc. | " + " | ".join(columns) + " |",
        "|---|---:|---:|" + "---:|" * len(columns),
    ]
    smallest = min((rows for _, rows, _ in points), default=None)
    for model, rows, conc in points:
        cells = []
        for contender in contenders:
            run = _find(runs, contender, model, rows, conc)
            cells.append(cell(run) if run else "-")
        if paired:
            health = _health(paired, model, conc) if rows == smallest else None
            cells.append(cell(health) if health and health.get("paired_with") == model else "")
        lines.append(f"| {model} | {rows} | {conc} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _paired(run: dict[str, Any]) -> str:
    return f"/health (next to {run['paired_with']})" if run.get("paired_with") else "/health"


def _split(run: dict[str, Any]) -> str:
    split = run.get("cpu_split") or []
    return f" ({'+'.join(str(c) for c in split)})" if len(split) > 1 else ""


def _runs_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "Every run:",
        "",
        "| contender | model | rows | conc. | req/s | rows/s | p50 ms | p99 ms | errors "
        "| server CPU % (per process) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        rows = run["rows"] or 0
        rows_per_s = _fmt(run["rps"] * rows, 0) if rows else "-"
        lines.append(
            f"| {run['contender']} | {run['model'] or _paired(run)} | {rows or '-'} | "
            f"{run['concurrency']} | {_fmt(run['rps'])} | {rows_per_s} | "
            f"{_fmt(run['p50_ms'], 2)} | {_fmt(run['p99_ms'], 2)} | {run['errors']} | "
            f"{_fmt(run['cpu_percent'], 0)}{_split(run)} |"
        )
    return [*lines, ""]


def _inprocess(report: dict[str, Any]) -> list[str]:
    lines = [
        "In-process reference (1,000 rows, one thread, median of repeated calls):",
        "",
        "| model | version runtime | sklearn rows/s | ONNX rows/s | used | measured | load |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    for model, ref in report["inprocess"].items():
        onnx = ref.get("onnx_error", "-")
        if ref["onnx_rows_per_s"]:
            onnx = _fmt(ref["onnx_rows_per_s"], 0)
        lines.append(
            f"| {model} | {ref['version_runtime']} | {_fmt(ref['sklearn_rows_per_s'], 0)} | "
            f"{onnx} | {ref['runtime']} | {ref.get('measured', '-')} | "
            f"{ref.get('load_1min', '-')} |"
        )
    return [*lines, ""]


def _targets(report: dict[str, Any]) -> list[str]:
    lines = ["| target | model | value | goal | result | detail |", "|---|---|---:|---|---|---|"]
    for item in report["ratios"]:
        lines.append(
            f"| {item['target']} | {item['model'] or 'all'} | {_fmt(item['value'], 2)} | "
            f"{item['goal']} | {item['result']} | {item['detail']} |"
        )
    bad = [c for c in report["checks"] if not c["ok"]]
    if bad or report["failures"]:
        lines += ["", "Failures:", ""]
        lines += [f"- {failure}" for failure in report["failures"]]
        lines += [f"- check {c['contender']} {c['model']}: {c}" for c in bad]
    return [*lines, ""]


FLOOR_LABELS = {
    "mlserve": "mlserve",
    "floor": "model floor",
    "echo": "echo floor",
    "wsgi-floor": "WSGI model floor",
    "wsgi-echo": "WSGI echo floor",
}


def floor_table(report: dict[str, Any]) -> list[str]:
    """mlserve next to the model and echo floors: req/s (and per core), p50, p99, ratio.

    One line per (model, concurrency, contender) of the 1-row runs; empty when
    neither floor was measured. Server CPU per request (CPU time of the server's
    processes / answers) does not depend on how much of the machine other work
    took, unlike req/s.
    """
    runs = [r for r in report["runs"] if r["contender"] in FLOOR_LABELS and r["rows"] == 1]
    if not any(r["contender"] in FLOORS for r in runs):
        return []
    cores = report["machine"]["cores"] or 1
    lines = [
        f"The floor (1-row requests; per core: req/s / {cores}, the machine's cores, "
        "load generator included):",
        "",
        "| model | conc. | server | req/s | req/s per core | p50 ms | p99 ms | mlserve / this "
        "| server CPU µs / request | req/s of each round |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    points = list(dict.fromkeys((r["model"], r["concurrency"]) for r in runs))
    for model, conc in points:
        ours = _find(runs, "mlserve", model, 1, conc)
        for contender, label in FLOOR_LABELS.items():
            run = _find(runs, contender, model, 1, conc)
            if run is None:
                continue
            ratio = ours["rps"] / run["rps"] if ours and run["rps"] else None
            cpu_us = 1e4 * run["cpu_percent"] / run["rps"] if run["rps"] else None
            lines.append(
                f"| {model} | {conc} | {label} | {_fmt(run['rps'], 0)} | "
                f"{_fmt(run['rps'] / cores, 0)} | {_fmt(run['p50_ms'], 2)} | "
                f"{_fmt(run['p99_ms'], 2)} | {_fmt(ratio, 2)} | {_fmt(cpu_us, 0)} | "
                f"{', '.join(f'{v:,.0f}' for v in run.get('rps_rounds', [run['rps']]))} |"
            )
    return [*lines, ""]


def markdown_report(report: dict[str, Any]) -> str:
    """The whole report as Markdown: machine, versions, summaries, every run, targets."""
    machine = report["machine"]
    lines = [
        f"### Run of {report['started'][:10]} ({report['minutes']} min)",
        "",
        f"`{report['command']}`",
        "",
        f"Machine: {machine['cpu']} ({machine['cpu_family_model']}), {machine['cores']} cores, "
        f"{machine['os']}, Python {machine['python']}, {machine['wrk']}, mlserve at "
        f"{machine['mlserve_commit']}; load average {report['load_before']} before the run "
        f"(1 min; {machine['load_average_1min']} at the end).",
        "",
        f"mlserve runs on {report['mlserve_server']} with 2 workers, "
        f"{'an API key on every request' if report.get('mlserve_api_key') else 'no API key'}, "
        f"settings {_settings(report.get('mlserve_env'))}; the peers as described in "
        "docs/benchmarks.md.",
        "",
        SAME_BOX.format(cores=machine["cores"]),
        "",
        *(
            [
                f"Each point was measured in {rounds} rounds, the order of the contenders "
                "rotated from round to round; figures are each point's median.",
                "",
            ]
            if (rounds := report["config"].get("rounds", 1)) > 1
            else []
        ),
        "| contender | versions |",
        "|---|---|",
    ]
    for name, versions in report["versions"].items():
        listed = ", ".join(f"{k} {v}" for k, v in versions.items())
        lines.append(f"| {name} | {listed} |")
    lines.append("")
    health = [r for r in report["runs"] if r["contender"] == "health" and not r.get("paired_with")]
    if health:
        lines += [
            "mlserve `GET /health` (the ceiling): "
            + "; ".join(
                f"c={r['concurrency']}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                f"p99 {r['p99_ms']:.2f} ms"
                for r in health
            )
            + ".",
            "",
        ]
    lines += _pivot(report, "Requests per second", lambda r: f"{r['rps']:,.0f}")
    lines += _pivot(
        report, "Latency p50 / p99 (ms)", lambda r: f"{r['p50_ms']:,.1f} / {r['p99_ms']:,.0f}"
    )
    lines += _pivot(
        report,
        "Server CPU, % of one core (per process when the load reached more than one)",
        lambda r: f"{r['cpu_percent']:.0f}{_split(r)}",
    )
    lines += floor_table(report)
    errors = sum(r["errors"] for r in report["runs"])
    lines += [f"Errors (non-2xx + socket errors) over all runs: {errors}.", ""]
    lines += _inprocess(report)
    lines += _targets(report)
    lines += _runs_table(report)
    return "\n".join(lines)
