"""Save a joblib pipeline as an MLflow model; run with the mlflow venv's Python.

Usage::

    python mlflow_export.py MODEL.joblib FEATURES.json OUT_DIR

The signature is inferred from the sample rows in ``features.json`` cast as in
training (numeric features float64, text as object), so ``mlflow models serve``
casts request columns the same way. The model is stored in MLflow's default
(skops) format, trusting exactly the types this pipeline holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import mlflow.sklearn
import pandas as pd
import sklearn
import skops.io
from mlflow.models import infer_signature


def main() -> None:
    """Read the arguments, build the signature and write the MLflow model folder."""
    source, features_file, out_dir = sys.argv[1:4]
    pipeline = joblib.load(source)
    features = json.loads(Path(features_file).read_text())
    frame = pd.DataFrame.from_records(features["sample"], columns=features["columns"])
    frame[features["numeric"]] = frame[features["numeric"]].astype("float64")
    signature = infer_signature(frame, pipeline.predict(frame))
    mlflow.sklearn.save_model(
        pipeline,
        out_dir,
        signature=signature,
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)),
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )


if __name__ == "__main__":
    main()
