"""The preprocessing step: imputation, scaling and one-hot encoding by feature type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlserve.preprocessing import build_preprocessor


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 100.0],
            "colour": pd.Series(["red", np.nan, "red", "blue", "red"], dtype=object),
        }
    )


def test_build_preprocessor_imputes_median_then_scales(frame: pd.DataFrame) -> None:
    out = build_preprocessor(["x"], []).fit_transform(frame)
    filled = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # median of 1, 2, 4, 100 is 3
    np.testing.assert_allclose(out[:, 0], (filled - filled.mean()) / filled.std())


def test_build_preprocessor_imputes_missing_text_with_most_frequent(
    frame: pd.DataFrame,
) -> None:
    transformer = build_preprocessor([], ["colour"]).fit(frame)
    assert transformer.get_feature_names_out().tolist() == ["colour_blue", "colour_red"]
    np.testing.assert_array_equal(transformer.transform(frame)[1], [0.0, 1.0])


def test_build_preprocessor_encodes_unseen_category_as_zeros(frame: pd.DataFrame) -> None:
    transformer = build_preprocessor(["x"], ["colour"]).fit(frame)
    unseen = pd.DataFrame({"x": [2.0], "colour": pd.Series(["green"], dtype=object)})
    np.testing.assert_array_equal(transformer.transform(unseen)[0, 1:], [0.0, 0.0])


def test_build_preprocessor_drops_columns_it_was_not_given(frame: pd.DataFrame) -> None:
    frame["ignored"] = 7.0
    assert build_preprocessor(["x"], ["colour"]).fit_transform(frame).shape == (5, 3)
