"""Width, fit time and cross-validated score of encodings of a Titanic-style table.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/encodings.py [--rows 800]

Compares, on the generated table of ``tests/titanic.py`` (target ``Survived``, the nine
columns trained "as is" plus, for the old encoding, ``Name``), three ways of encoding
its text, each followed by logistic_regression and by gradient_boosting, scored by
5-fold cross-validated accuracy (seed 0), all in one run:

``dense one-hot (before)``
    mlserve before issue 14: every value a dense column (``Name``, ``Ticket``, ``Cabin``
    included).
``capped one-hot + target encoding (now)``
    :func:`mlserve.training.preprocessing.build_preprocessor` as a job builds it
    (:func:`mlserve.training.pipeline.build_pipeline`).
``capped one-hot + hashing``
    the same, but ``Ticket`` and ``Cabin`` hashed into 32 columns each
    (``FeatureHasher``), the alternative the issue names.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction import FeatureHasher
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.titanic import FEATURES, titanic_frame

from mlserve.training.pipeline import build_pipeline
from mlserve.training.signature import infer_signature, model_frame
from mlserve.training.spec import TrainSpec

HIGH = ["Ticket", "Cabin"]


def _numeric(numeric: list[str]) -> tuple[str, Pipeline, list[str]]:
    steps = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return ("numeric", steps, numeric)


def _hashed(column: str) -> Pipeline:
    to_text = FunctionTransformer(lambda x: [[str(v)] for v in np.ravel(x)])
    return make_pipeline(
        SimpleImputer(strategy="most_frequent"), to_text, FeatureHasher(32, input_type="string")
    )


def candidates(algorithm: str, frame: pd.DataFrame) -> dict[str, tuple[Pipeline, pd.DataFrame]]:
    """Name -> (unfitted pipeline, its input frame)."""
    y = frame["Survived"]
    spec = TrainSpec(dataset_id="b", target="Survived", algorithm=algorithm, model_name="b")
    now_sig = infer_signature(frame[FEATURES], y, "classification", None)
    now = build_pipeline(spec, "classification", now_sig, None)
    old_features = [*FEATURES, "Name"]
    old_sig = infer_signature(frame[old_features], y, "classification", None)
    numeric = [f["name"] for f in old_sig["inputs"] if f["type"] != "string"]
    text = [f["name"] for f in old_sig["inputs"] if f["type"] == "string"]
    dense = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    old_pre = ColumnTransformer(
        [
            _numeric(numeric),
            ("text", make_pipeline(SimpleImputer(strategy="most_frequent"), dense), text),
        ]
    )
    old = Pipeline([("preprocess", old_pre), ("estimator", now.named_steps["estimator"])])
    low = [t for t in text if t not in [*HIGH, "Name"]]
    capped = now.named_steps["preprocess"].transformers[1]  # the categorical step, as built
    hashed_pre = ColumnTransformer(
        [_numeric(numeric), (capped[0], capped[1], low), *((c, _hashed(c), [c]) for c in HIGH)]
    )
    hashed = Pipeline([("preprocess", hashed_pre), ("estimator", now.named_steps["estimator"])])
    return {
        "dense one-hot (before)": (old, model_frame(frame[old_features], old_sig)),
        "capped one-hot + target encoding (now)": (now, model_frame(frame[FEATURES], now_sig)),
        "capped one-hot + hashing": (hashed, model_frame(frame[FEATURES], now_sig)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=800)
    args = parser.parse_args()
    frame = titanic_frame(args.rows)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    print(f"{'algorithm':20} {'encoding':40} {'width':>6} {'fit s':>7} {'cv accuracy':>12}")
    for algorithm in ("logistic_regression", "gradient_boosting"):
        for name, (pipeline, X) in candidates(algorithm, frame).items():
            if algorithm == "gradient_boosting" and "hashing" in name:
                continue  # HistGradientBoosting takes no sparse input (FeatureHasher's)
            started = time.perf_counter()
            width = pipeline.fit(X, frame["Survived"]).named_steps["preprocess"].transform(X).shape
            seconds = time.perf_counter() - started
            scores = cross_val_score(pipeline, X, frame["Survived"], cv=folds)
            print(
                f"{algorithm:20} {name:40} {width[1]:6d} {seconds:7.2f} "
                f"{scores.mean():6.3f} ± {scores.std():.3f}"
            )


if __name__ == "__main__":
    main()
