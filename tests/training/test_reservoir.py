"""Seeded Algorithm R (mlserve.training.reservoir) and the rows a trained version keeps
(mlserve.training.memory)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlserve.store.artifacts import StoredArtifact
from mlserve.training.fit import train
from mlserve.training.memory import keep_rows, read_rows
from mlserve.training.reservoir import REPLAY_STREAM, Reservoir, uniform
from mlserve.training.spec import TrainSpec


def one_by_one(size: int, seed: int, ids: list[int]) -> list[int]:
    """Algorithm R as Vitter (1985) writes it: one item at a time."""
    items: list[int] = []
    draws = uniform(seed, REPLAY_STREAM, np.asarray(ids))
    for seen, (item, u) in enumerate(zip(ids, draws, strict=True), 1):
        if len(items) < size:
            items.append(item)
        elif (slot := int(u * seen)) < size:
            items[slot] = item
    return items


@pytest.mark.parametrize(("size", "n_ids", "cuts"), [(50, 40, [7]), (50, 5_000, [1, 60, 2_999])])
def test_the_reservoir_is_algorithm_r_whatever_the_offers(
    size: int, n_ids: int, cuts: list[int]
) -> None:
    ids = list(range(-300, 0)) + list(range(1, n_ids + 1))
    whole = Reservoir(size=size, seed=11, stream=REPLAY_STREAM)
    whole.offer(ids)
    parts = Reservoir(size=size, seed=11, stream=REPLAY_STREAM)
    for start, end in zip([0, *cuts], [*cuts, len(ids)], strict=True):
        parts.offer(ids[start:end])
    assert whole.items == parts.items == one_by_one(size, 11, ids)
    assert (whole.seen, len(whole.items)) == (len(ids), min(size, len(ids)))
    restored = Reservoir.restore(whole.state(), seed=11, stream=REPLAY_STREAM)
    assert restored == whole


def test_every_item_offered_is_kept_with_the_same_probability() -> None:
    kept = np.zeros(2_000)
    for seed in range(200):
        reservoir = Reservoir(size=200, seed=seed, stream=REPLAY_STREAM)
        reservoir.offer(np.arange(1, 2_001))
        kept[np.asarray(reservoir.items) - 1] += 1
    share = kept / 200  # expected 200 / 2,000 = 0.1 for every id
    assert share.mean() == pytest.approx(0.1)
    for block in share.reshape(4, 500):  # early and late items alike
        assert block.mean() == pytest.approx(0.1, abs=0.01)


def test_draws_are_uniform_and_depend_on_seed_stream_and_id_only() -> None:
    ids = np.arange(1, 100_001)
    draws = uniform(3, 1, ids)
    assert draws.min() >= 0 and draws.max() < 1
    assert np.mean(draws < 0.1) == pytest.approx(0.1, abs=0.005)
    assert np.array_equal(uniform(3, 1, ids[::-1])[::-1], draws)
    assert not np.array_equal(uniform(4, 1, ids), draws)
    assert not np.array_equal(uniform(3, 2, ids), draws)


def test_a_trained_version_keeps_its_replay_reservoir_and_a_sample_of_its_test_split(
    diabetes_frame: pd.DataFrame,
) -> None:
    frame = diabetes_frame.assign(clinic=np.where(diabetes_frame.index % 3, "north", "south"))
    spec = TrainSpec(
        dataset_id="d", target="target", algorithm="sgd_regressor", model_name="m", cv_folds=0
    )
    result = train(frame, spec, "regression")
    kept = keep_rows(result, seed=5, replay_rows=100, older_rows=30, test_rows=40)
    replay = Reservoir(size=100, seed=5, stream=REPLAY_STREAM)
    replay.offer(-np.arange(1, result.n_train + 1))
    assert kept.replay == replay and (kept.n_train, kept.n_test) == (353, 89)
    train_ids = sorted(i for i in kept.frame.index if i < 0)
    assert train_ids == sorted(replay.items)
    assert len([i for i in kept.frame.index if i > 0]) == 40
    artifact = StoredArtifact(key="models/x-rows.parquet", sha256="0" * 64, size_bytes=1)
    memory = kept.memory(artifact)
    assert memory["replay"] == replay.state() and memory["seed"] == 5
    assert memory["older"] == {"size": 30, "seen": 0, "items": []}
    assert memory["rows"]["train_rows"] == 100 and memory["rows"]["test_rows"] == 40
    X, y = read_rows(kept.to_parquet(), result.signature)
    assert list(X.columns) == [f["name"] for f in result.signature["inputs"]]
    assert X["clinic"].dtype == object and X["age"].dtype == np.float64
    row = train_ids[0]
    expected = result.train_frame.iloc[-row - 1]  # type: ignore[union-attr]
    assert X.loc[row].tolist() == expected.tolist()
    assert y.loc[row] == result.train_target.iloc[-row - 1]  # type: ignore[union-attr]
    first_test = min(i for i in kept.frame.index if i > 0)
    assert X.loc[first_test].tolist() == result.test_frame.iloc[first_test - 1].tolist()  # type: ignore[union-attr]
