"""What refusing duplicate keys costs the predict path: parse_json / orjson.loads, one run.

Usage: ``python bench/json_duplicates.py``. Bodies as clients send them (8 numeric
features, as California housing): one row, 100 rows as records, 1,000 rows as
columns, and 100 records holding a text feature with a colon (the exact check runs).
"""

from __future__ import annotations

import json
import timeit

import orjson

from mlserve.api.strictjson import parse_json

FEATURES = [f"f{i}" for i in range(8)]


def _bodies() -> dict[str, bytes]:
    row = {name: 1.5 + i for i, name in enumerate(FEATURES)}
    return {
        "1 record": json.dumps({"instances": [row]}).encode(),
        "100 records": json.dumps({"instances": [row] * 100}).encode(),
        "1000 rows columnar": json.dumps({"inputs": {n: [1.5] * 1000 for n in FEATURES}}).encode(),
        "100 records, text with ':'": json.dumps(
            {"instances": [{**row, "t": "12:30"}] * 100}
        ).encode(),
    }


def main() -> None:
    print(f"{'body':28} {'orjson us':>10} {'strict us':>10} {'ratio':>6}")
    for label, body in _bodies().items():
        number = 2000 if len(body) < 10_000 else 300
        base = min(timeit.repeat(lambda b=body: orjson.loads(b), number=number, repeat=5))
        strict = min(timeit.repeat(lambda b=body: parse_json(b), number=number, repeat=5))
        us = 1e6 / number
        print(f"{label:28} {base * us:10.1f} {strict * us:10.1f} {strict / base:6.2f}")


if __name__ == "__main__":
    main()
