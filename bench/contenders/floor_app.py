"""The floor: the fastest Python can answer a prediction over HTTP, with no framework at all.

``bench/serve.py`` measures mlserve against this to know how much of a request's
cost is mlserve's own. It is a bare HTTP/1.1 responder on the standard library's
asyncio (an ``asyncio.Protocol``; no uvloop, no HTTP library): ``--processes``
processes each bind the port with ``SO_REUSEPORT`` (the kernel spreads
connections among them), keep connections alive, and read and write
``Content-Length`` bodies. Nothing else: no routing beyond the first path
segment, no validation, no logging, no authentication, no metrics.

``--mode model`` (the *model floor*) serves ``POST /predict/<model>``: it parses
``{"instances": [{feature: value}, ...]}`` with orjson, builds the feed exactly
as mlserve does (:func:`mlserve.serving.onnx.feed_from_frame`: one ``(n, 1)``
array per feature, float64 with NaN for missing numbers, object arrays of
``str`` for text with mlserve's missing-text marker; graph inputs named by the
graph's ``mlserve.inputs`` metadata; one ``(n, k)`` float64 array for the numeric
features of a packed graph, ``mlserve.packed``, and ``(n,)`` text inputs where the
graph declares them so), runs the version's own ONNX graph in an
onnxruntime session with :class:`mlserve.serving.onnx.OnnxModel`'s options
(CPU, 1 intra- and 1 inter-op thread, sequential, basic graph optimizations)
and answers ``{"predictions": [...]}``. What mlserve adds on top of this is
what mlserve costs.

``--mode echo`` (the *echo floor*) reads the request the same way and answers a
constant JSON body without parsing it: the cost of HTTP in Python on this box.

``GET /health`` answers 200 in both modes. Models are read from ``--models``
(a folder of ``<model>.onnx`` with ``<model>.signature.json``, written by
``bench/serve_models.py``'s ``export``); a process binds the port only once its
sessions are loaded, so it never receives a request it cannot answer.

Usage::

    python bench/contenders/floor_app.py --mode model --models DIR --port 8000 --processes 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

NAN = float("nan")
HEAD = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 500: b"Internal Server Error"}
ECHO_BODY = b'{"predictions":[0.0]}'
Answer = Callable[[bytes, bytes, bytes], bytes]  # (method, path, body) -> whole response


def response(status: int, body: bytes) -> bytes:
    """A whole HTTP/1.1 response with a ``Content-Length`` body."""
    return HEAD % (status, REASONS[status], len(body)) + body


class Model:
    """One version's ONNX graph in a session with mlserve's options, and its feed recipe."""

    def __init__(self, onnx: bytes, signature: dict[str, Any], missing_text: str) -> None:
        import onnxruntime as ort

        # The options of mlserve.serving.ort_options.session_options, written out rather than
        # imported: the floor process must not load mlserve, whose imports would be counted
        # in the floor's start-up time and memory.
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.log_severity_level = 3
        self.session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        features = [spec["name"] for spec in signature["inputs"]]
        graph = json.loads(meta["mlserve.inputs"]) if "mlserve.inputs" in meta else features
        # (feature, graph input, is text)
        self.inputs = [
            (spec["name"], name, spec["type"] == "string")
            for spec, name in zip(signature["inputs"], graph, strict=True)
        ]
        # A packed graph (mlserve.packed): one (n, k) float64 input for the numeric features.
        self.packed: tuple[str, list[str]] | None = None
        if "mlserve.packed" in meta:
            packed = json.loads(meta["mlserve.packed"])
            feature_of = {name: feature for feature, name, _ in self.inputs}
            self.packed = (packed["input"], [feature_of[c] for c in packed["columns"]])
            self.inputs = [i for i in self.inputs if i[0] not in self.packed[1]]
        self.outputs = [self.session.get_outputs()[0].name]
        # Text inputs of shape (n,) (mlserve.serving.onnx_fuse.flatten_text_inputs).
        self.flat = {i.name for i in self.session.get_inputs() if len(i.shape) == 1}
        self.missing_text = missing_text

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Predictions for the records ``rows`` (labels for a classifier)."""
        n = len(rows)
        feed = {}
        missing = self.missing_text
        for feature, graph, text in self.inputs:
            values = [row.get(feature) for row in rows]
            if text:
                column = [missing if v is None else str(v) for v in values]
                array = np.array(column, dtype=object)
                feed[graph] = array if graph in self.flat else array.reshape(n, 1)
            else:
                column = [NAN if v is None else v for v in values]
                feed[graph] = np.array(column, dtype=np.float64).reshape(n, 1)
        if self.packed is not None:
            name, columns = self.packed
            table = [[NAN if (v := row.get(f)) is None else v for f in columns] for row in rows]
            feed[name] = np.array(table, dtype=np.float64)
        (out,) = self.session.run(self.outputs, feed)
        return list(out.reshape(-1).tolist())


class Http(asyncio.Protocol):
    """HTTP/1.1 keep-alive (pipelining too) with ``Content-Length`` request bodies."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        transport = self.transport
        assert transport is not None
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            length = 0
            close = False
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            if len(buffer) < end + 4 + length:
                break
            body = buffer[end + 4 : end + 4 + length]
            buffer = buffer[end + 4 + length :]
            method, path, version = lines[0].split(b" ", 2)
            transport.write(self.answer(method, path, body))
            if close or version == b"HTTP/1.0":
                transport.close()
                buffer = b""
                break
        self.buffer = buffer


def model_answer(models: dict[bytes, Model]) -> Answer:
    """``(method, path, body) -> response``: health, or predictions with a model."""

    def answer(method: bytes, path: bytes, body: bytes) -> bytes:
        if path == b"/health":
            return response(200, b'{"status":"ok"}')
        model = models.get(path.rpartition(b"/")[2])
        if model is None or method != b"POST":
            return response(404, b'{"error":"not found"}')
        try:
            rows = orjson.loads(body)["instances"]
            return response(200, orjson.dumps({"predictions": model.predict(rows)}))
        except Exception as exc:  # the floor does not validate; say what went wrong
            return response(400, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"}))

    return answer


def echo_answer(method: bytes, path: bytes, body: bytes) -> bytes:
    """The same constant body for every request (``/health`` included)."""
    return ECHO


ECHO = response(200, ECHO_BODY)


def load(folder: Path) -> dict[bytes, Model]:
    """Every ``<model>.onnx`` of ``folder`` with its ``<model>.signature.json``."""
    models = {}
    for path in sorted(folder.glob("*.onnx")):
        info = json.loads(path.with_suffix(".signature.json").read_text())
        models[path.stem.encode()] = Model(
            path.read_bytes(), info["signature"], info["missing_text"]
        )
    return models


def serve(args: argparse.Namespace) -> None:
    """One process: load, bind the shared port, answer forever."""
    answer: Answer = model_answer(load(args.models)) if args.mode == "model" else echo_answer
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    sock.setblocking(False)
    loop = asyncio.new_event_loop()
    # asyncio sets TCP_NODELAY on every accepted TCP connection.
    server = loop.run_until_complete(loop.create_server(lambda: Http(answer), sock=sock))
    loop.run_until_complete(server.serve_forever())


def main(argv: list[str] | None = None) -> None:
    """Fork ``--processes`` servers; stop them all on SIGTERM or when one dies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("model", "echo"), default="model")
    parser.add_argument("--models", type=Path, help="folder of <model>.onnx (mode model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    if args.mode == "model" and args.models is None:
        parser.error("--mode model needs --models")
    children = []
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            serve(args)
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.wait()  # one died: stop the others
    stop(0, None)


if __name__ == "__main__":
    main()
