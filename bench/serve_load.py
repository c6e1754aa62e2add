"""Servers in sessions of their own, CPU accounting from /proc, and wrk runs.

Used by ``bench/serve.py``: every server is started in a new session (its own
process group); its process tree (session members and descendants) is what
its CPU time is summed over and what is killed, on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
WRK_INSTALL_HINT = "sudo apt-get install -y wrk   # Debian/Ubuntu; wrk 4.x"

# POSTs the file named by WRK_BODY_FILE (GET when unset), counts non-2xx answers
# and prints one JSON line with the summary. Latencies are in microseconds.
WRK_SCRIPT = r"""
local path = os.getenv("WRK_BODY_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return data[data.rfind(")") + 2 :].split()


def process_table() -> dict[int, tuple[int, int, int]]:
    """``pid -> (parent pid, session id, start time in ticks)`` of every live process.

    Zombies are left out: they hold no resources and cannot be killed.
    """
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] != "Z":
                table[int(entry.name)] = (int(fields[1]), int(fields[3]), int(fields[19]))
    return table


def tree_pids(root: int) -> dict[int, int]:
    """Processes of the server started as ``root``, with their start times.

    That is its session (it was started with ``start_new_session=True``, and
    children re-parented to init stay in it) plus every descendant, since
    some servers (BentoML's circus arbiter) put each worker in a session of
    its own.
    """
    table = process_table()
    found = {pid for pid, (_, sid, _) in table.items() if sid == root}
    if root in table:
        found.add(root)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return {pid: table[pid][2] for pid in found}


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU time of each live pid in ``pids``, in seconds."""
    times = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            times[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return times


_LIVE: set[Server] = set()


def _kill_all() -> None:
    for server in list(_LIVE):
        server.stop()


def install_signal_handlers() -> None:
    """Turn SIGTERM and SIGHUP into ``KeyboardInterrupt`` and stop servers at exit.

    Ctrl-C (SIGINT) already raises ``KeyboardInterrupt``; servers live in their
    own sessions, so they never see it: the ``finally`` clauses and the
    ``atexit`` hook stop them.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    atexit.register(_kill_all)


@dataclass(eq=False)
class Server:
    """A server process started in its own session, logging to a file.

    Attributes
    ----------
    name : str
        Label used in messages and for the log file.
    argv : list of str
        Command line.
    env : dict
        Complete environment of the command.
    cwd : Path
        Working folder.
    ready_urls : list of str
        URLs that must all answer 2xx to a GET before the server counts as up.
    log_path : Path
        stdout and stderr of the server.
    """

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    ready_urls: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _seen: dict[int, int] = field(default_factory=dict, init=False)

    def start(self, timeout_s: float = 240.0) -> None:
        """Start the command and wait until every ready URL answers 2xx.

        Raises
        ------
        RuntimeError
            If the process exits or is not ready after ``timeout_s`` seconds;
            the message ends with the tail of its log.
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout_s
        pending = list(self.ready_urls)
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode} before it was "
                    f"ready; log {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not ready after {timeout_s:.0f} s ({pending[0]}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if http_status(pending[0]) // 100 == 2:
                pending.pop(0)
            else:
                time.sleep(0.25)

    def log_tail(self, lines: int = 30) -> str:
        """Last ``lines`` lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """Every live process of the server (remembered, to be killed at the end)."""
        if self.proc is None:
            return []
        found = tree_pids(self.proc.pid)
        self._seen.update(found)
        return list(found)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the server's process group; SIGKILL whatever is left after ``grace_s``.

        Every process ever seen in the server's tree, including workers in
        sessions of their own, is killed if it outlives the grace period.
        Safe to call twice.
        """
        proc = self.proc
        _LIVE.discard(self)
        if proc is None:
            return
        self.pids()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self._alive():
            with contextlib.suppress(ChildProcessError):
                proc.poll()
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in self._alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        self.proc = None

    def _alive(self) -> list[int]:
        """Seen processes still running (same pid and start time: not a reused pid)."""
        table = process_table()
        if self.proc is not None:
            self._seen.update(tree_pids(self.proc.pid))
        return [
            pid
            for pid, started in self._seen.items()
            if pid in table and table[pid][2] == started and pid != os.getpid()
        ]


@contextlib.contextmanager
def running(server: Server, timeout_s: float = 240.0) -> Iterator[Server]:
    """Start ``server``, yield it, and always stop it (errors and Ctrl-C included)."""
    try:
        server.start(timeout_s)
        yield server
    finally:
        server.stop()


def http_status(url: str, body: bytes | None = None, timeout_s: float = 5.0) -> int:
    """Status of a GET (or a JSON POST when ``body`` is given); 0 if no answer."""
    try:
        status, _ = http_call(url, body, timeout_s=timeout_s)
    except OSError:
        return 0
    return status


def http_call(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 60.0,
) -> tuple[int, bytes]:
    """GET ``url``, or POST ``body`` as JSON; return the status and the answer's bytes.

    Raises
    ------
    OSError
        If the server cannot be reached.
    """
    sent = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers={**sent, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wrk_path() -> str:
    """Path of the ``wrk`` binary.

    Raises
    ------
    SystemExit
        If wrk is not on PATH, with the command that installs it.
    """
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(f"wrk not found on PATH; install it with:\n  {WRK_INSTALL_HINT}")
    return path


@dataclass
class LoadResult:
    """What one timed wrk run measured.

    Attributes
    ----------
    requests : int
        Answers received (any status).
    seconds : float
        Duration as wrk measured it.
    rps : float
        Answers per second.
    p50_ms, p99_ms : float
        Latency percentiles, in milliseconds.
    errors : int
        Non-2xx answers plus socket errors (connect, read, write, timeout).
    cpu_percent : float
        Server CPU (user + system of its whole process tree) over the run,
        in % of one core.
    cpu_split : list of float
        The same, per process above 2 %, largest first: shows whether the
        load reached both workers.
    """

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_percent: float
    cpu_split: list[float]


def wrk(
    url: str,
    script: Path,
    body_file: Path | None,
    connections: int,
    duration_s: int,
    headers: dict[str, str] | None = None,
    timeout_s: int = 30,
) -> dict[str, int]:
    """Run wrk once (one thread) and return the summary its Lua script printed.

    Raises
    ------
    RuntimeError
        If wrk fails or prints no summary.
    """
    env = {**os.environ, "WRK_BODY_FILE": str(body_file) if body_file else ""}
    argv = [wrk_path(), "-t1", f"-c{connections}", f"-d{duration_s}s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv += [f"--timeout={timeout_s}s", "-s", str(script), url]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return dict(json.loads(line[len("WRKJSON ") :]))
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")


def wait_idle(
    server: Server, cores: float = 0.15, step_s: float = 0.25, most_s: float = 60.0
) -> float:
    """Wait until the server uses less than ``cores`` of CPU over ``step_s``; return the wait.

    A load generator that stops leaves requests queued in the server, which
    would still be processed during the next timed run; this drains them.
    Gives up after ``most_s`` seconds.
    """
    started = time.monotonic()
    before = cpu_seconds(server.pids())
    while time.monotonic() - started < most_s:
        time.sleep(step_s)
        after = cpu_seconds(server.pids())
        used = sum(t - before.get(pid, 0.0) for pid, t in after.items())
        if used < cores * step_s:
            break
        before = after
    return time.monotonic() - started


def measure(
    server: Server,
    url: str,
    script: Path,
    body_file: Path | None,
    connections: int,
    duration_s: int,
    warmup_s: int,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Warm up, then time one wrk run while reading the server's CPU time from /proc.

    The server is left to finish queued requests (see :func:`wait_idle`)
    before the warm-up and before the timed run.
    """
    wait_idle(server)
    if warmup_s > 0:
        wrk(url, script, body_file, connections, warmup_s, headers)
        wait_idle(server)
    before = cpu_seconds(server.pids())
    started = time.monotonic()
    summary = wrk(url, script, body_file, connections, duration_s, headers)
    wall = time.monotonic() - started
    after = cpu_seconds(server.pids())
    # A process forked during the run counts from 0; one that exited is lost.
    per_process = [t - before.get(pid, 0.0) for pid, t in after.items()]
    cpu_used = sum(per_process)
    seconds = summary["duration_us"] / 1e6
    errors = summary["non2xx"] + sum(summary[k] for k in ("connect", "read", "write", "timeout"))
    return LoadResult(
        requests=summary["requests"],
        seconds=seconds,
        rps=summary["requests"] / seconds if seconds else 0.0,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=errors,
        cpu_percent=100 * cpu_used / wall if wall else 0.0,
        cpu_split=sorted(
            (round(100 * t / wall) for t in per_process if wall and 100 * t / wall > 2),
            reverse=True,
        ),
    )
