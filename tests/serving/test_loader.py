"""Every catalogue algorithm's artifact loads under the allow-list and predicts the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.datasets import load_diabetes, load_iris

from mlserve.errors import Conflict
from mlserve.serving.loader import ALLOWED_TYPES, load_pipeline
from mlserve.training.catalogue import CATALOGUE
from mlserve.training.fit import train
from mlserve.training.spec import TrainSpec


def _data(task: str) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    if task == "regression":
        frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    else:
        bunch = load_iris(as_frame=True)
        frame = bunch.frame
        frame["target"] = bunch.target_names[bunch.target]  # text labels
    frame["colour"] = rng.choice(["red", "green", "blue"], size=len(frame))
    frame.loc[frame.index[::7], "colour"] = None
    return frame


@pytest.mark.parametrize(("task", "name"), sorted(CATALOGUE))
def test_load_pipeline_every_catalogue_artifact_round_trips(task: str, name: str) -> None:
    frame = _data(task)
    spec = TrainSpec(dataset_id="d", target="target", algorithm=name, model_name="m", cv_folds=0)
    result = train(frame, spec, task)
    data = sio.dumps(result.pipeline)
    assert set(sio.get_untrusted_types(data=data)) <= set(ALLOWED_TYPES)
    loaded = load_pipeline(data)
    features = frame.drop(columns=["target"]).head(40)
    original = result.pipeline.predict(features)
    restored = loaded.predict(features)
    if task == "regression":
        np.testing.assert_allclose(restored, original, rtol=0, atol=1e-9)
    else:
        assert list(restored) == list(original)


def test_load_pipeline_refuses_a_type_outside_the_allow_list() -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    planted = sio.dumps(Pipeline([("run", FunctionTransformer(func=print))]))
    with pytest.raises(Conflict, match="types that are not allowed"):
        load_pipeline(planted)


def test_load_pipeline_refuses_bytes_that_are_not_skops() -> None:
    with pytest.raises(Conflict, match="could not be loaded"):
        load_pipeline(b"\x80\x04\x95 not a skops zip")
