"""Rows a trained version keeps for its online updates, and the memory they start from.

An online update (:mod:`mlserve.online.update`) mixes its new samples with a replay
reservoir that starts as a sample of the training split, and its guard judges the new
version on the test split too: both must be at hand when an update runs, long after the
training job. A trained version of an incremental algorithm therefore keeps
(docs/online-learning.md, "Updates that remember"):

- ``train_rows``: Algorithm R (:mod:`.reservoir`) over its training split in split order,
  the rows offered as ids -1, -2, ..., -n_train, with the replay reservoir's capacity:
  exactly the replay reservoir after the training split was offered, which the first
  update then continues with the samples it learns;
- ``test_rows``: a seeded reservoir sample of at most ``test_rows`` rows of its test split
  (ids 1..n_test), never replayed, for the guard.

Both are stored as one Parquet file (features and target as columns, the id as index:
negative for the training split, positive for the test split), loaded again without
unpickling anything (:func:`read_rows`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlserve.store.artifacts import StoredArtifact
from mlserve.store.documents import Memory, Signature
from mlserve.training.fit import TrainResult
from mlserve.training.reservoir import (
    REPLAY_STREAM,
    TEST_STREAM,
    Reservoir,
)
from mlserve.training.signature import model_frame


@dataclass(kw_only=True)
class KeptRows:
    """The rows a trained version keeps, and its memory before any update.

    Attributes
    ----------
    frame : DataFrame of shape (train_rows + test_rows, n_features + 1)
        Features and target; index ``id`` (< 0: training split row ``-id - 1``; > 0: test
        split row ``id - 1``).
    seed : int
    n_train, n_test : int
        Rows in the training and test splits.
    replay : Reservoir
        The replay reservoir after the training split was offered.
    older_size : int
        Capacity of the reservoir of held-out samples (empty until an update).
    """

    frame: pd.DataFrame
    seed: int
    n_train: int
    n_test: int
    replay: Reservoir
    older_size: int

    def to_parquet(self) -> bytes:
        """The rows as a Parquet file."""
        buffer = io.BytesIO()
        self.frame.to_parquet(buffer, index=True)
        return buffer.getvalue()

    def memory(self, artifact: StoredArtifact) -> Memory:
        """The trained version's memory, its rows stored as ``artifact``."""
        return {
            "seed": self.seed,
            "replay": self.replay.state(),
            "older": {"size": self.older_size, "seen": 0, "items": []},
            "rows": {
                "key": artifact.key,
                "sha256": artifact.sha256,
                "size_bytes": artifact.size_bytes,
                "n_train": self.n_train,
                "n_test": self.n_test,
                "train_rows": int((self.frame.index < 0).sum()),
                "test_rows": int((self.frame.index > 0).sum()),
            },
        }


def keep_rows(
    result: TrainResult,
    *,
    seed: int,
    replay_rows: int,
    older_rows: int,
    test_rows: int,
) -> KeptRows:
    """Choose the rows a trained version keeps (see the module docstring).

    Parameters
    ----------
    result : TrainResult
        Of the training job, with its splits (``train_frame``, ``train_target``,
        ``test_frame``, ``test_target``).
    seed : int
        The training job's ``random_state``: the seed of every draw of the lineage.
    replay_rows, older_rows, test_rows : int
        Capacities, rows: of the replay reservoir, of the reservoir of held-out samples,
        and the most test rows kept.

    Raises
    ------
    ValueError
        ``result`` does not carry its splits.
    """
    X_train, y_train = result.train_frame, result.train_target
    X_test, y_test = result.test_frame, result.test_target
    if X_train is None or y_train is None or X_test is None or y_test is None:
        raise ValueError("the training result does not carry its splits")
    target = result.signature["output"]["name"]
    replay = Reservoir(size=replay_rows, seed=seed, stream=REPLAY_STREAM)
    replay.offer(-np.arange(1, len(X_train) + 1))
    test = Reservoir(size=test_rows, seed=seed, stream=TEST_STREAM)
    test.offer(np.arange(1, len(X_test) + 1))
    train_ids = np.sort(np.asarray(replay.items, dtype=np.int64))
    test_ids = np.sort(np.asarray(test.items, dtype=np.int64))
    parts = [
        _rows(X_train, y_train, -train_ids - 1, train_ids, target),
        _rows(X_test, y_test, test_ids - 1, test_ids, target),
    ]
    frame = pd.concat(parts)
    frame.index.name = "id"
    return KeptRows(
        frame=frame,
        seed=seed,
        n_train=len(X_train),
        n_test=len(X_test),
        replay=replay,
        older_size=older_rows,
    )


def _rows(
    X: pd.DataFrame, y: pd.Series, positions: np.ndarray, ids: np.ndarray, target: str
) -> pd.DataFrame:
    part = X.iloc[positions].copy()
    part[target] = np.asarray(y)[positions]
    part.index = pd.Index(ids, name="id")
    return part


def read_rows(data: bytes, signature: Signature) -> tuple[pd.DataFrame, pd.Series]:
    """Kept rows from their Parquet file (sha256 already checked).

    Returns
    -------
    X : DataFrame of shape (n_rows, n_features)
        In model input dtypes, indexed by id.
    y : Series of shape (n_rows,)
        Targets, indexed by id.
    """
    frame = pd.read_parquet(io.BytesIO(data))
    names = [f["name"] for f in signature["inputs"]]
    X = model_frame(frame[names], signature)
    X.index = frame.index
    return X, frame[signature["output"]["name"]]
