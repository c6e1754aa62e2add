"""Which S3 library for the artifact store: boto3 or obstore, measured against moto_server.

Starts ``moto_server`` on loopback (pip ``moto[server]``), then for each library: the
time to import it and build a client (in a fresh interpreter, what a replica pays at
start), and the time of ``put`` then ``get`` of 1 MiB objects. Prints ratios of one run.

    .venv/bin/python bench/s3_client.py [--objects 30]   # boto3 too: pip install boto3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.s3server import moto_server

STARTUP = {
    "boto3": "import boto3; boto3.client('s3')",
    "obstore": (
        "from obstore.store import S3Store; S3Store('bench', client_options={'allow_http': True})"
    ),
}


def startup_s(library: str, env: dict[str, str], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", STARTUP[library]], env=env, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def round_trips_s(library: str, endpoint: str, objects: int) -> float:
    data = os.urandom(1 << 20)
    if library == "boto3":
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="bench-boto3")
        started = time.perf_counter()
        for i in range(objects):
            client.put_object(Bucket="bench-boto3", Key=f"o/{i}", Body=data)
            client.get_object(Bucket="bench-boto3", Key=f"o/{i}")["Body"].read()
        return time.perf_counter() - started
    import boto3
    import obstore
    from obstore.store import S3Store

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench-obstore")
    store = S3Store("bench-obstore", endpoint=endpoint, client_options={"allow_http": True})
    started = time.perf_counter()
    for i in range(objects):
        obstore.put(store, f"o/{i}", data)
        bytes(obstore.get(store, f"o/{i}").bytes())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=30)
    args = parser.parse_args()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    os.environ.update(env)
    with moto_server() as endpoint:
        results = {
            library: (startup_s(library, env), round_trips_s(library, endpoint, args.objects))
            for library in ("boto3", "obstore")
        }
    for library, (start, trips) in results.items():
        print(
            f"{library:8s} import+client {start * 1000:7.0f} ms   "
            f"{args.objects} x (put+get 1 MiB) {trips * 1000:7.0f} ms"
        )
    (b_start, b_trips), (o_start, o_trips) = results["boto3"], results["obstore"]
    print(f"boto3/obstore: start {b_start / o_start:.2f}x, put+get {b_trips / o_trips:.2f}x")


if __name__ == "__main__":
    main()
