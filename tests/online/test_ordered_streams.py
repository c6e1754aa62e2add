"""Issue 19 acceptance, over HTTP: ordered streams improve the model, the guard sees it all.

California rows sorted by longitude: version 1 is trained on the western half, then the
eastern half is posted to ``/samples`` in longitude order, in batches of 500, with the
default settings (guard window 500, an update every 500, tolerance 0.02, replay reservoir
4,000 rows, 3 passes, 10 % held out). Each update runs inside the request whose samples
make it due (``jobs_immediate``). tests/online/stream.py drives it; bench/online_stream.py
prints the same figures for any seed (docs/online-learning.md, "Acceptance").

What holds, and is asserted (seed 0, the training job's default ``random_state``):

- ``mlp``: ``production`` ends at least 5 % below version 1 on the whole eastern half, and
  is never worse than version 1 by more than the tolerance on the samples arrived so far.
- ``sgd_regressor``: the same, except the 5 %: it ends below version 1, and no linear
  model can reach 5 % (:func:`test_no_affine_model_reaches_5_percent_below_version_1`).
- Neither is asserted never worse than version 1 on the whole eastern half at every
  point: that half holds rows that have not arrived, and learning what has arrived can be
  worse on them (:func:`test_learning_the_arrived_rows_can_be_worse_on_the_rows_to_come`).

The classifier scenario (breast cancer sorted by ``worst radius``) is small and runs in
both database passes; the California ones train on all of California (``slow``) and run
in the SQLite pass: their database work is that of tests/online/test_replay.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.registry import service as registry
from mlserve.serving.loader import load_pipeline
from mlserve.settings import Settings
from mlserve.training.signature import model_frame
from tests.conftest import CALIFORNIA_TARGET, keyed_client
from tests.online.stream import Scenario, StreamRun, run_stream, table

TOLERANCE = 0.02  # online_guard_tolerance, the default
CALIFORNIA = [
    pytest.mark.slow,
    pytest.mark.sqlite_only(
        reason="trains on all of California; its database work (samples by id, memory, "
        "lineage) is that of tests/online/test_replay.py, which runs on both"
    ),
]
Streams = Callable[[str], tuple[StreamRun, Context]]


@pytest.fixture(scope="module")
def halves(california_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = california_frame.sort_values("longitude", kind="mergesort").reset_index(drop=True)
    half = len(ordered) // 2
    return ordered.iloc[:half], ordered.iloc[half:].reset_index(drop=True)


@pytest.fixture(scope="module")
def california(
    tmp_path_factory: pytest.TempPathFactory, halves: tuple[pd.DataFrame, pd.DataFrame]
) -> Iterator[Streams]:
    """The ordered eastern half streamed to a model of each algorithm (once per module)."""
    runs: dict[str, tuple[StreamRun, Context]] = {}

    def streamed(algorithm: str) -> tuple[StreamRun, Context]:
        if algorithm not in runs:
            home = tmp_path_factory.mktemp(algorithm) / "home"
            app = create_app(
                Settings(home=home, jobs_immediate=True, log_level="WARNING",
                         prediction_log_sample_rate=0.0)
            )  # fmt: skip
            scenario = Scenario(
                model="housing",
                algorithm=algorithm,
                target=CALIFORNIA_TARGET,
                first=halves[0],
                stream=halves[1],
                batch=500,
            )
            runs[algorithm] = (run_stream(keyed_client(app), scenario), context_of(app))
            print(f"\n{algorithm}, ordered:\n{table(runs[algorithm][0])}")
        return runs[algorithm]

    yield streamed
    for _run, ctx in runs.values():
        ctx.db.dispose()


@pytest.mark.parametrize(
    ("algorithm", "final_at_most"),
    [
        pytest.param("mlp", -0.05, marks=CALIFORNIA),  # measured: -30.7 % (5 seeds: -26 .. -42 %)
        pytest.param("sgd_regressor", 0.0, marks=CALIFORNIA),  # -0.7 % (5 seeds: -0.7 .. -1.4 %)
    ],
)
def test_production_improves_on_the_ordered_stream_and_is_never_worse_on_arrived_samples(
    california: Streams, algorithm: str, final_at_most: float
) -> None:
    run, _ctx = california(algorithm)
    assert len(run.versions) == 19 and run.state["pending"] == 820  # 10,320 - 19 * 500
    assert run.relative(run.final) < final_at_most, table(run)
    assert run.worst_on_arrived() <= TOLERANCE, table(run)
    assert run.production[-1] > 1  # production moved along the stream


@pytest.mark.parametrize("algorithm", [pytest.param("sgd_regressor", marks=CALIFORNIA)])
def test_each_sample_is_consumed_once_and_the_guard_names_the_set_that_failed(
    california: Streams, algorithm: str
) -> None:
    run, _ctx = california(algorithm)
    cursor, expected_first = run.state["cursor"], 1
    for version in run.versions:
        lineage = version["online"]
        assert lineage["first_sample_id"] == expected_first
        assert lineage["n_samples"] == lineage["last_sample_id"] - expected_first + 1
        assert 0 < lineage["n_held_out"] < lineage["n_samples"] // 4
        expected_first = lineage["last_sample_id"] + 1
        sets = {s["name"]: s for s in lineage["guard"]["sets"]}
        assert sets["test split"]["judged"] and sets["test split"]["n_samples"] == 2_064
        failed = [name for name, s in sets.items() if s["judged"] and not s["passed"]]
        assert (lineage["status"] == "candidate") == bool(failed)
        for name in failed:
            assert name in lineage["reason"].split(":")[0]
    assert cursor == expected_first - 1 == 9_500
    reasons = [v["online"]["reason"] for v in run.versions if v["online"]["status"] == "candidate"]
    assert any("older samples" in r.split(":")[0] for r in reasons), reasons  # not the window


@pytest.mark.parametrize("algorithm", [pytest.param("sgd_regressor", marks=CALIFORNIA)])
def test_the_prequential_error_is_version_1_s_on_what_it_served_then_the_updates(
    california: Streams, halves: tuple[pd.DataFrame, pd.DataFrame], algorithm: str
) -> None:
    run, ctx = california(algorithm)
    summary = run.state["prequential"]
    assert summary["n_samples"] == run.state["cursor"]
    assert [u["version"] for u in summary["by_update"]] == [v["version"] for v in run.versions]
    first = summary["by_update"][0]
    assert first["scored_by"] == [1] and first["n_samples"] == 500
    east = halves[1].iloc[:500]
    errors = _v1_predictions(ctx, east) - east[CALIFORNIA_TARGET]
    assert first["value"] == pytest.approx(float(np.sqrt(np.mean(errors**2))), rel=1e-9)
    # Each batch was scored by the version production pointed at when it was posted.
    live_when_posted = [1, *run.production][: run.state["cursor"] // 500]
    assert {entry["version"] for entry in summary["by_version"]} == set(live_when_posted)


def _version_1(ctx: Context) -> tuple[Any, Any]:
    root = registry.get_version(ctx, "housing", 1)
    return load_pipeline(ctx.store.get_bytes(root.artifact_key, root.artifact_sha256)), root


def _features(ctx: Context, frame: pd.DataFrame) -> Any:
    """Version 1's preprocessing of ``frame``: what every version's estimator sees."""
    pipeline, root = _version_1(ctx)
    return pipeline[:-1].transform(model_frame(frame, root.signature))


def _v1_predictions(ctx: Context, frame: pd.DataFrame) -> np.ndarray:
    pipeline, root = _version_1(ctx)
    return np.asarray(pipeline.predict(model_frame(frame, root.signature)))


def _rmse(predicted: np.ndarray, truth: pd.Series) -> float:
    return float(np.sqrt(np.mean((predicted - truth.to_numpy()) ** 2)))


@pytest.mark.parametrize("algorithm", [pytest.param("sgd_regressor", marks=CALIFORNIA)])
def test_no_affine_model_reaches_5_percent_below_version_1(
    california: Streams, halves: tuple[pd.DataFrame, pd.DataFrame], algorithm: str
) -> None:
    """An update changes only the linear model on the fixed preprocessing, and the target
    scaler is affine: every version predicts an affine function of the same features. The
    least-squares fit on the whole eastern half, in-sample, is the lowest RMSE any of them
    can have there, and it is above 95 % of version 1's."""
    run, ctx = california(algorithm)
    east = halves[1]
    X = _features(ctx, east)
    bound = _rmse(
        LinearRegression().fit(X, east[CALIFORNIA_TARGET]).predict(X), east[CALIFORNIA_TARGET]
    )
    print(f"v1 {run.v1:.0f}, -5 % {0.95 * run.v1:.0f}, OLS in-sample bound {bound:.0f}")
    assert bound > 0.95 * run.v1  # 69,722 > 69,234
    assert run.final >= bound


@pytest.mark.parametrize("algorithm", [pytest.param("sgd_regressor", marks=CALIFORNIA)])
def test_learning_the_arrived_rows_can_be_worse_on_the_rows_to_come(
    california: Streams, halves: tuple[pd.DataFrame, pd.DataFrame], algorithm: str
) -> None:
    """The least-squares fit on the western half plus the first 1,500 eastern rows (all
    that has arrived by then) beats version 1 on those rows, yet is worse than version 1
    beyond the tolerance on the whole eastern half: the rows still to come (inland) are
    unlike the arrived ones (Los Angeles). No guard, which sees only what has arrived,
    can refuse it for that reason."""
    run, ctx = california(algorithm)
    west, east = halves
    arrived = pd.concat([west, east.iloc[:1_500]], ignore_index=True)
    fit = LinearRegression().fit(_features(ctx, arrived), arrived[CALIFORNIA_TARGET])
    predicted = fit.predict(_features(ctx, east))
    truth = east[CALIFORNIA_TARGET]
    v1_arrived = _rmse(_v1_predictions(ctx, east.iloc[:1_500]), truth.iloc[:1_500])
    on_arrived, on_east = _rmse(predicted[:1_500], truth.iloc[:1_500]), _rmse(predicted, truth)
    print(f"arrived: v1 {v1_arrived:.0f}, fit {on_arrived:.0f}")
    print(f"whole east: v1 {run.v1:.0f}, fit {on_east:.0f}")
    assert on_arrived < v1_arrived
    assert on_east > (1 + TOLERANCE) * run.v1


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamRun]:
    """``sgd_classifier`` on breast cancer sorted by ``worst radius``: the first 284 rows
    train version 1, the other 285 arrive in order in batches of 25. The policy and the
    reservoirs are scaled to that stream: an update every 25 samples beyond a guard window
    of 25, 200 held-out rows kept, guard sets judged from 20 rows."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    ordered = frame.sort_values("worst radius", kind="mergesort").reset_index(drop=True)
    app = create_app(
        Settings(
            home=tmp_path_factory.mktemp("cancer") / "home",
            jobs_immediate=True,
            log_level="WARNING",
            prediction_log_sample_rate=0.0,
            online_update_every_samples=25,
            online_guard_window_samples=25,
            online_holdout_reservoir_rows=200,
            online_guard_min_rows=20,
        )
    )
    scenario = Scenario(
        model="cancer",
        algorithm="sgd_classifier",
        target="target",
        first=ordered.iloc[:284],
        stream=ordered.iloc[284:].reset_index(drop=True),
        batch=25,
    )
    run = run_stream(keyed_client(app), scenario)
    print(f"\nsgd_classifier, breast cancer sorted:\n{table(run)}")
    yield run
    context_of(app).db.dispose()


def test_a_classifier_on_a_sorted_stream_ends_5_percent_fewer_errors_never_worse_on_arrivals(
    cancer: StreamRun,
) -> None:
    """Measured: accuracy 0.930 -> 0.968 (errors -55 %; 5 seeds: -21 .. -82 %). Without
    replay and the three-set guard it ended at 0.919, below version 1."""
    assert cancer.error_change(cancer.final) <= -0.05, table(cancer)
    assert cancer.worst_on_arrived() <= TOLERANCE, table(cancer)
    assert cancer.state["prequential"]["metric"] == "accuracy"
