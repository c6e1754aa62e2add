"""The preprocessing step: imputation, scaling and one-hot encoding by feature type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mlserve.training.preprocessing import MAX_CATEGORIES, build_preprocessor, encoding_report


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


# --------------------------------------------------------------------------- bounded width


@pytest.fixture
def messy() -> pd.DataFrame:
    """400 rows: ``town`` with 40 values (8 frequent, 32 seen once), ``ticket`` with 400."""
    rng = np.random.default_rng(0)
    towns = [f"t{i}" for i in rng.choice(8, 368)] + [f"rare{i}" for i in range(32)]
    return pd.DataFrame(
        {
            "x": rng.random(400),
            "town": pd.Series(towns, dtype=object),
            "ticket": pd.Series([f"k{i}" for i in range(400)], dtype=object),
            "y": rng.random(400),
        }
    )


def test_one_hot_is_capped_and_groups_infrequent_values(messy: pd.DataFrame) -> None:
    transformer = build_preprocessor([], ["town"], sparse=True).fit(messy)
    names = transformer.get_feature_names_out().tolist()
    assert names == [f"town_t{i}" for i in range(8)] + ["town_infrequent_sklearn"]
    unseen = pd.DataFrame({"town": pd.Series(["nowhere"], dtype=object)})
    np.testing.assert_array_equal(transformer.transform(unseen).toarray(), [[0] * 8 + [1]])
    assert encoding_report(transformer) == {
        "town": "one-hot, 9 columns (40 values, 32 grouped as infrequent)"
    }


def test_one_hot_is_sparse_only_when_asked(messy: pd.DataFrame) -> None:
    assert sparse.issparse(build_preprocessor([], ["town"], sparse=True).fit_transform(messy))
    assert isinstance(build_preprocessor([], ["town"]).fit_transform(messy), np.ndarray)


def test_one_hot_keeps_every_value_of_a_small_table(frame: pd.DataFrame) -> None:
    assert build_preprocessor([], ["colour"]).fit_transform(frame).shape == (5, 2)


def test_one_hot_never_exceeds_max_categories() -> None:
    frame = pd.DataFrame({"c": pd.Series([f"v{i % 45}" for i in range(900)], dtype=object)})
    assert build_preprocessor([], ["c"]).fit_transform(frame).shape == (900, MAX_CATEGORIES)


def test_bounded_feature_is_one_cross_fitted_column(messy: pd.DataFrame) -> None:
    transformer = build_preprocessor(["x"], [], ["ticket"])
    out = transformer.fit_transform(messy, messy["y"])
    assert out.shape == (400, 2)
    # Cross-fitting: a training row's encoding never uses its own target, so with one row
    # per ticket every training encoding is a fold's mean target, not the row's target.
    assert not np.allclose(out[:, 1], messy["y"])
    assert encoding_report(transformer)["ticket"] == (
        "target encoding, cross-fitted in 5 folds (400 values)"
    )


def test_native_categorical_gives_ordinal_codes(messy: pd.DataFrame) -> None:
    transformer = build_preprocessor([], ["town"], native_categorical=True).fit(messy)
    unseen = pd.DataFrame({"town": pd.Series(["t3", "rare1", "nowhere"], dtype=object)})
    np.testing.assert_array_equal(transformer.transform(unseen).ravel(), [3.0, 8.0, np.nan])
