"""Open Inference Protocol (V2) throughput against its references, ratios from one run.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/v2_infer.py [--seconds 5]

1. One tabular row: ``POST /v2/models/<name>/infer`` (JSON, one 1-D tensor per feature)
   against ``POST /api/v1/models/<name>/predict`` (one record) on the same trained version
   (linear_regression on california_housing.csv, compiled to ONNX), both through the WSGI
   app in process (no network), alternated in rounds; requests per second of each.
   Target: V2 >= 0.9x v1.
2. A CNN imported from PyTorch (the digits network of docs/import.md, 8x8 images), batches
   of 64 images over V2 with binary tensors (request built, sent through the WSGI app,
   response decoded), against ONNX Runtime called in process with the same session options
   (:func:`mlserve.serving.import_onnx.open_session`); images per second of each.
   Target: V2 >= 0.7x ONNX Runtime.

Requests are passed to the WSGI application as a WSGI server passes them (an environ
built once per request, the body iterable read back), not through Flask's test client,
whose own request building and response wrapping cost about as much as the request
itself and are no part of mlserve. ``--test-client`` measures through it as before.
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from flask.testing import FlaskClient
from inprocess import Wsgi, bench_app, train, upload

from mlserve.api.current import context_of
from mlserve.security import keys as auth
from mlserve.serving.import_onnx import open_session

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
TARGET = "median_house_value"
HEADER = "Inference-Header-Content-Length"


def rate(calls: list[Callable[[], object]], seconds: float, units: list[int]) -> list[float]:
    """Units per second of each call, alternated in rounds of 0.2 s each for ``seconds``."""
    for call in calls:
        call()
    spent = [0.0] * len(calls)
    done = [0] * len(calls)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for i, call in enumerate(calls):
            started = time.perf_counter()
            n = 0
            while time.perf_counter() - started < 0.2:
                call()
                n += 1
            spent[i] += time.perf_counter() - started
            done[i] += n * units[i]
    return [d / s for d, s in zip(done, spent, strict=True)]


def tabular(
    client: FlaskClient, wsgi: Wsgi | None, seconds: float, data: Path
) -> tuple[float, float]:
    frame = pd.read_csv(data)
    dataset_id = upload(client, data.read_bytes(), "california.csv")
    train(client, dataset_id, target=TARGET, algorithm="linear_regression", model_name="california")
    row = frame.drop(columns=[TARGET]).iloc[0]
    record = {
        k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()
    }
    v1_body = orjson.dumps({"instances": [record]})
    tensors = []
    for name, value in record.items():
        if isinstance(value, str):
            tensors.append({"name": name, "datatype": "BYTES", "shape": [1], "data": [value]})
        else:
            tensors.append({"name": name, "datatype": "FP64", "shape": [1], "data": [value]})
    v2_body = orjson.dumps({"inputs": tensors})
    json_type = {"Content-Type": "application/json"}

    def v1() -> object:
        if wsgi is not None:
            status, _, body = wsgi.post("/api/v1/models/california/predict", v1_body, json_type)
            assert status.startswith("200"), body
            return body
        response = client.post("/api/v1/models/california/predict", data=v1_body, headers=json_type)
        assert response.status_code == 200
        return response

    def v2() -> object:
        if wsgi is not None:
            status, _, body = wsgi.post("/v2/models/california/infer", v2_body, json_type)
            assert status.startswith("200"), body
            return body
        response = client.post("/v2/models/california/infer", data=v2_body, headers=json_type)
        assert response.status_code == 200, response.get_data()
        return response

    v1_rate, v2_rate = rate([v1, v2], seconds, [1, 1])
    return v1_rate, v2_rate


def cnn(client: FlaskClient, wsgi: Wsgi | None, seconds: float) -> tuple[float, float]:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 4 * 4, 10),
    ).eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        net,
        (torch.zeros(1, 1, 8, 8),),
        buffer,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        dynamo=False,
    )
    data = buffer.getvalue()
    created = client.post(
        "/api/v1/models/digits/versions",
        data={"file": (io.BytesIO(data), "digits.onnx")},
        content_type="multipart/form-data",
    )
    assert created.status_code == 201, created.get_json()
    from sklearn.datasets import load_digits

    images = (load_digits().images[:64] / 16.0).astype(np.float32)[:, None, :, :]
    session = open_session(data)

    def direct() -> object:
        return session.run(None, {"input": images})

    def v2() -> object:
        head = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP32",
                        "shape": list(images.shape),
                        "parameters": {"binary_data_size": images.nbytes},
                    }
                ],
                "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
            }
        )
        headers = {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}
        if wsgi is not None:
            status, answer_headers, body = wsgi.post(
                "/v2/models/digits/infer", head + images.tobytes(), headers
            )
            assert status.startswith("200"), body
            length = int(answer_headers[HEADER])
        else:
            response = client.post(
                "/v2/models/digits/infer", data=head + images.tobytes(), headers=headers
            )
            body = response.get_data()
            length = int(response.headers[HEADER])
        return np.frombuffer(body[length:], "<f4").reshape(64, 10)

    np.testing.assert_allclose(v2(), direct()[0], atol=1e-6)
    direct_rate, v2_rate = rate([direct, v2], seconds, [64, 64])
    return direct_rate, v2_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--test-client", action="store_true", help="send requests through Flask's test client"
    )
    args = parser.parse_args()
    # Rate limits counted as in production, but high enough never to refuse: the default
    # 1000/second per key is within reach of one process here.
    app = bench_app(
        auth=True,
        rate_limit_per_key="1000000/second",
        rate_limit_per_ip="1000000/second",
    )
    key = auth.create_key(context_of(app), "admin", name="bench").secret
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    wsgi = None if args.test_client else Wsgi(app, {"Authorization": f"Bearer {key}"})
    how = "Flask test client" if wsgi is None else "WSGI calls"
    print(f"machine: {platform.machine()}, python {platform.python_version()}; in process, {how}")
    v1_rate, v2_rate = tabular(client, wsgi, args.seconds, args.data)
    print(
        f"one tabular row   v1 {v1_rate:8.0f} req/s   V2 {v2_rate:8.0f} req/s   "
        f"V2/v1 {v2_rate / v1_rate:.2f} (target >= 0.9)"
    )
    direct_rate, v2_cnn = cnn(client, wsgi, args.seconds)
    print(
        f"CNN batch of 64   ORT {direct_rate:8.0f} img/s   V2 {v2_cnn:8.0f} img/s   "
        f"V2/ORT {v2_cnn / direct_rate:.2f} (target >= 0.7)"
    )


if __name__ == "__main__":
    main()
