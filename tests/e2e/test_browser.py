"""The web UI in a real browser: Debian's headless Chromium, driven by Playwright, against
a real ``mlserve serve`` process, along a first-time user's path: sign in with an API
key, upload california_housing.csv, train gradient boosting, watch the job, read the
version page's plots, set the ``production`` alias, predict one row and a CSV file; and
a model that keeps learning: ``sgd_regressor`` updated online from samples, its new
version's live metrics (from feedback), drift, lineage and guard decision.

The upload and the training happen once per module (fixtures ``uploaded`` and
``trained``); each test opens its own browser context, signed in by the session
cookie, whose guard fails the test on any console error, uncaught exception, 5xx
response or request to a host other than mlserve's. Every page visited is saved as a
full-page screenshot (see tests/e2e/browser.py for where).
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import pytest

pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e .[dev]"
)

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    StorageState,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests import pg
from tests.conftest import CALIFORNIA_CSV, CALIFORNIA_TARGET
from tests.e2e.browser import (
    ARTIFACTS,
    CHROMIUM,
    DESKTOP,
    JOB_STATE_JS,
    LAYOUT_SHIFT_INIT_JS,
    OBSERVE_PROGRESS_JS,
    PHONE,
    READ_PROGRESS_JS,
    Guard,
    Shots,
    horizontal_overflow,
    plot_summary,
    session_cookie_text,
    tab_to,
    unlabelled_inputs,
    wait_for_plots,
)
from tests.e2e.service import Service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect.set_options(timeout=20_000)  # a 2-core machine training in the background

MODEL = "housing"
ALGORITHM = "gradient_boosting"
# Set in the train form (a hyper-parameter and a split setting), and enough work for the
# job page to show its progress for a few seconds on any machine.
MAX_ITER = 300
CV_FOLDS = 10
JOB_TIMEOUT_S = 300
UPLOAD_BYTES_PER_S = 1_000_000  # throttled upload: the 1.4 MB file takes ~1.5 s
NAV_LINKS = ("Home", "Datasets", "Train", "Models", "Predict", "API")
REGRESSION_PLOTS = {"predicted_vs_actual", "residuals", "permutation_importance", "cv"}
# Online learning (fixture ``online``): an update every 100 samples beyond a guard window
# of 50, and every prediction logged so that each one can receive feedback. Nothing else
# of the module sends samples, and logging every prediction changes no answer.
ONLINE_ENV = {
    "MLSERVE_ONLINE_UPDATE_EVERY_SAMPLES": "100",
    "MLSERVE_ONLINE_GUARD_WINDOW_SAMPLES": "50",
    "MLSERVE_PREDICTION_LOG_SAMPLE_RATE": "1",
}
ONLINE_MODEL = "diabetes"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (CHROMIUM.is_file() and CHROMIUM.stat().st_mode & 0o111):
        pytest.skip(
            f"no Chromium at {CHROMIUM} (set MLSERVE_TEST_CHROMIUM; .ci/run installs "
            "Debian's chromium package)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("browser") / "home", env=ONLINE_ENV).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(service: Service) -> Iterator[httpx.Client]:
    """The same service over plain HTTP with the admin key: what any client sees."""
    with service.client() as http:
        yield http


@pytest.fixture(scope="module")
def shots_folder() -> Path:
    return ARTIFACTS / pg.backend()


@contextmanager
def browsing(
    browser: Browser,
    service: Service,
    state: StorageState | None = None,
    viewport: ViewportSize = DESKTOP,
) -> Iterator[tuple[BrowserContext, Guard]]:
    """A new browser context on ``service`` (cookies from ``state``), guarded: leaving it
    raises ``AssertionError`` if any of its pages broke a rule (see :class:`Guard`)."""
    context = browser.new_context(
        base_url=service.url, viewport=viewport, storage_state=state, accept_downloads=True
    )
    context.set_default_timeout(30_000)
    context.add_init_script(LAYOUT_SHIFT_INIT_JS)
    guard = Guard(service.url).watch(context)
    try:
        yield context, guard
    finally:
        context.close()
    guard.check()


@dataclass
class Ui:
    """One test's signed-in browser page, its guard and its screenshots."""

    page: Page
    guard: Guard
    shots: Shots

    def open(self, path: str, name: str | None = None) -> Page:
        """Go to ``path``, wait for the network to settle and for every plot, screenshot."""
        self.page.goto(path)
        self.settle()
        if name is not None:
            self.shots.take(self.page, name)
        return self.page

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")
        if self.page.locator("div.plot[data-plot]").count():
            wait_for_plots(self.page)


@pytest.fixture
def ui(
    request: pytest.FixtureRequest,
    browser: Browser,
    service: Service,
    signed_in: StorageState,
    shots_folder: Path,
) -> Iterator[Ui]:
    with browsing(browser, service, signed_in) as (context, guard):
        yield Ui(context.new_page(), guard, Shots(shots_folder, request.node.name))


def sign_in(page: Page, key: str, shots: Shots) -> None:
    page.goto("/login")
    shots.take(page, "login")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: urlsplit(url).path != "/login")
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    page.wait_for_load_state("networkidle")
    shots.take(page, "signed-in")


@pytest.fixture(scope="module")
def signed_in(browser: Browser, service: Service, shots_folder: Path) -> StorageState:
    """The cookies of a session signed in with the admin key through ``/login``."""
    assert service.key is not None
    with browsing(browser, service) as (context, _):
        sign_in(context.new_page(), service.key, Shots(shots_folder, "sign-in"))
        state = context.storage_state()
    return state


@dataclass
class Uploaded:
    dataset_id: str
    progress: list[dict[str, Any]]  # every state the upload's progress bar was seen in


@pytest.fixture(scope="module")
def uploaded(
    browser: Browser, service: Service, signed_in: StorageState, shots_folder: Path
) -> Uploaded:
    """california_housing.csv uploaded through the form of ``/datasets`` (throttled to
    ``UPLOAD_BYTES_PER_S`` so that its progress shows), named ``california``."""
    if not CALIFORNIA_CSV.is_file():
        pytest.skip(f"{CALIFORNIA_CSV} is missing (it lives in ../shared/datasets)")
    shots = Shots(shots_folder, "upload")
    with browsing(browser, service, signed_in) as (context, _):
        page = context.new_page()
        page.goto("/datasets")
        page.wait_for_load_state("networkidle")
        shots.take(page, "datasets-before")
        page.get_by_label("CSV or Parquet file", exact=True).set_input_files(CALIFORNIA_CSV)
        page.get_by_label("Dataset name", exact=True).fill("california")
        page.evaluate(OBSERVE_PROGRESS_JS)
        devtools = context.new_cdp_session(page)
        devtools.send("Network.enable")
        network = {"offline": False, "latency": 0, "downloadThroughput": -1}
        devtools.send(
            "Network.emulateNetworkConditions", {**network, "uploadThroughput": UPLOAD_BYTES_PER_S}
        )
        page.get_by_role("button", name="Upload", exact=True).click()
        page.wait_for_url(re.compile(r"/datasets/[^/?#]+$"), timeout=120_000)
        devtools.send("Network.emulateNetworkConditions", {**network, "uploadThroughput": -1})
        progress: list[dict[str, Any]] = page.evaluate(READ_PROGRESS_JS)
        dataset_id = urlsplit(page.url).path.rsplit("/", 1)[1]
        page.wait_for_load_state("networkidle")
        shots.take(page, "dataset")
    return Uploaded(dataset_id, progress)


@dataclass
class Trained:
    job_id: str
    version: int
    polls: list[dict[str, Any]]  # the job page as seen every 0.2 s until the job ended
    layout_shifts: list[tuple[float, float]]  # the job page's (when in ms, score)


def choose_training(page: Page, model: str) -> None:
    """On ``/train``: target, algorithm and model name; everything else left as is."""
    page.get_by_label("Target", exact=True).select_option(CALIFORNIA_TARGET)
    page.get_by_label("Algorithm", exact=True).select_option(ALGORITHM)
    page.get_by_label("Model name", exact=True).fill(model)


def hyper_parameter(page: Page, name: str) -> Locator:
    """The input of one hyper-parameter (labelled by its name, maybe with more after it)."""
    return page.get_by_label(re.compile(rf"^{re.escape(name)}\b"))


def watch_job(page: Page, timeout_s: float) -> list[dict[str, Any]]:
    """Read the job page every 0.2 s until its status reads succeeded or failed."""
    polls: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        polls.append(page.evaluate(JOB_STATE_JS))
        if polls[-1]["status"] in ("succeeded", "failed"):
            return polls
        assert time.monotonic() < deadline, f"job page still {polls[-1]} after {timeout_s} s"
        page.wait_for_timeout(200)


@pytest.fixture(scope="module")
def trained(
    browser: Browser,
    service: Service,
    signed_in: StorageState,
    uploaded: Uploaded,
    shots_folder: Path,
) -> Trained:
    """gradient_boosting (``max_iter`` and the folds set, the rest left) on
    median_house_value, from the dataset page's "Train a model" link through the train
    form, watched on the job page until it succeeded."""
    shots = Shots(shots_folder, "train")
    with browsing(browser, service, signed_in) as (context, _):
        page = context.new_page()
        page.goto(f"/datasets/{uploaded.dataset_id}")
        page.get_by_role("link", name="Train a model", exact=True).click()
        page.wait_for_url(f"**/train?dataset={uploaded.dataset_id}")
        expect(page.get_by_label("Dataset", exact=True)).to_have_value(uploaded.dataset_id)
        choose_training(page, MODEL)
        hyper_parameter(page, "max_iter").fill(str(MAX_ITER))
        page.get_by_label("Cross-validation folds", exact=True).fill(str(CV_FOLDS))
        shots.take(page, "train-form")
        page.get_by_role("button", name="Start training", exact=True).click()
        page.wait_for_url(re.compile(r"/jobs/[^/?#]+$"))
        job_id = urlsplit(page.url).path.rsplit("/", 1)[1]
        shots.take(page, "job-started")
        polls = watch_job(page, JOB_TIMEOUT_S)
        assert polls[-1]["status"] == "succeeded", page.locator("main").inner_text()
        link = page.get_by_role("link", name="Open model version", exact=True)
        expect(link).to_be_visible()
        polls.append(page.evaluate(JOB_STATE_JS))
        shifts: list[tuple[float, float]] = page.evaluate("() => window.__layoutShifts")
        shots.take(page, "job-succeeded")
        link.click()
        page.wait_for_url(re.compile(rf"/models/{MODEL}/versions/\d+$"))
        version = int(urlsplit(page.url).path.rsplit("/", 1)[1])
    return Trained(job_id, version, polls, shifts)


def near(field: Locator, message: Locator, within_px: float = 120) -> bool:
    """Whether ``message`` sits next to ``field``: vertically within ``within_px``."""
    a, b = field.bounding_box(), message.bounding_box()
    assert a is not None and b is not None
    return b["y"] < a["y"] + a["height"] + within_px and b["y"] + b["height"] > a["y"] - within_px


def features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c != CALIFORNIA_TARGET]


def api_predictions(api: httpx.Client, rows: pd.DataFrame, version: int) -> list[float]:
    """The JSON predict route's answer for ``rows`` (missing values sent as null)."""
    instances = rows[features(rows)].astype(object).where(rows.notna(), None)
    response = api.post(
        f"/api/v1/models/{MODEL}/predict",
        params={"version": version},
        json={"instances": instances.to_dict(orient="records")},
    )
    assert response.status_code == 200, response.text
    predictions: list[float] = response.json()["predictions"]
    return predictions


# --------------------------------------------------------------------------- sign in


def test_sign_in_sets_an_http_only_session_cookie_without_the_key(
    signed_in: StorageState, service: Service
) -> None:
    cookies = signed_in["cookies"]
    assert cookies, "signing in set no cookie"
    for cookie in cookies:
        assert cookie["httpOnly"], cookie["name"]
        assert cookie["sameSite"] == "Lax", cookie["name"]
        assert service.key is not None
        assert service.key not in session_cookie_text(cookie["value"])
        assert service.key.rsplit("_", 1)[1] not in session_cookie_text(cookie["value"])


@pytest.mark.parametrize("wrong", ["unknown secret", "not a key"])
def test_wrong_key_is_refused_next_to_the_field(
    browser: Browser, service: Service, shots_folder: Path, wrong: str
) -> None:
    assert service.key is not None
    typed = f"{service.key[:13]}{'A' * 43}" if wrong == "unknown secret" else "letmein"
    shots = Shots(shots_folder, f"wrong-key-{wrong}")
    with browsing(browser, service) as (context, guard):
        guard.expect_status("/login", 401)  # Chromium logs the refused sign-in as an error
        page = context.new_page()
        page.goto("/login")
        field = page.get_by_label("API key", exact=True)
        field.fill(typed)
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Sign in", exact=True).click()
        assert answer.value.status == 401
        message = page.get_by_role("alert").filter(has_text=re.compile(r"\S"))
        expect(message).to_be_visible()
        assert near(field, message)
        assert urlsplit(page.url).path == "/login"
        shots.take(page, "refused")
        assert all(typed not in session_cookie_text(c["value"]) for c in context.cookies())
        page.goto("/datasets")
        assert urlsplit(page.url).path == "/login", "not signed in, yet /datasets opened"


# --------------------------------------------------------------------------- the flow


def test_upload_shows_progress_then_the_dataset_page(
    ui: Ui, uploaded: Uploaded, api: httpx.Client
) -> None:
    shown = [s for s in uploaded.progress if s["visible"] and s["value"] is not None]
    assert shown, f"no progress bar was visible during the upload: {uploaded.progress}"
    assert any(0 < s["value"] < s["max"] for s in shown), f"no progress in between: {shown}"
    assert all(s["value"] <= s["max"] for s in shown)
    dataset = api.get(f"/api/v1/datasets/{uploaded.dataset_id}").json()
    assert (dataset["name"], dataset["n_rows"]) == ("california", 20_640)

    page = ui.open(f"/datasets/{uploaded.dataset_id}", "dataset")
    kinds = Counter(
        page.locator("div.plot[data-plot]").evaluate_all("els => els.map(el => el.dataset.plot)")
    )
    numeric = [c for c in dataset["columns"] if "histogram" in c]
    assert kinds == {"histogram": len(numeric), "top": len(dataset["columns"]) - len(numeric)}
    assert len(numeric) == 9
    for plot in page.locator("div.plot[data-plot]").all():
        drawn = plot_summary(plot)
        assert drawn["svg"] >= 1 and drawn["bars"] > 0, (plot.get_attribute("data-plot"), drawn)
    for column in dataset["columns"]:  # the schema table: name, type and missing values
        row = (
            page.get_by_role("row")
            .filter(has=page.get_by_role("cell", name=column["name"], exact=True))
            .filter(has_text=column["type"])
            .filter(has_text=re.compile(rf"(^|\D){column['missing']}(\D|$)"))
        )
        expect(row.first).to_be_visible()
    preview = api.get(f"/api/v1/datasets/{uploaded.dataset_id}/preview").json()
    first = dict(zip(preview["columns"], preview["rows"][0], strict=True))
    expect(
        page.get_by_role("cell", name=first["ocean_proximity"], exact=True).first
    ).to_be_visible()
    # Data as stored (issue 14: -122.23 was shown as -122.2), in a box that scrolls
    # sideways rather than widening the page.
    expect(page.get_by_role("cell", name=str(first["longitude"]), exact=True).first).to_be_visible()
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    expect(page.get_by_role("link", name="Train a model", exact=True)).to_have_attribute(
        "href", re.compile(rf"/train\?dataset={uploaded.dataset_id}$")
    )

    page = ui.open("/datasets", "datasets")
    expect(page.get_by_role("link", name="california", exact=True)).to_have_attribute(
        "href", re.compile(rf"/datasets/{uploaded.dataset_id}$")
    )


def test_job_page_shows_live_progress_until_succeeded(trained: Trained, api: httpx.Client) -> None:
    job = api.get(f"/api/v1/training-jobs/{trained.job_id}").json()
    assert (job["status"], job["model_version"]) == ("succeeded", trained.version), job
    statuses = [p["status"] for p in trained.polls]
    order = ["queued", "running", "succeeded"]
    assert set(statuses) <= set(order), statuses
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    values = [p["value"] for p in trained.polls]
    assert None not in values, "the job page has no progress bar with a value"
    assert values == sorted(values), f"the progress bar went back: {values}"
    assert any(0 < v < 100 for v in values), f"no progress seen between 0 and 100: {values}"
    assert values[-1] == 100
    # No layout shift while the job updates: the bar and the status never move.
    assert len({tuple(p["bar"]) for p in trained.polls}) == 1, "the progress bar moved"
    assert len({tuple(p["status_box"][:2]) for p in trained.polls}) == 1, "the status moved"
    # Layout shifts: "good" (under 0.1, web.dev/cls) for the whole page, its first
    # render included, and next to none once it is following the job.
    assert sum(score for _, score in trained.layout_shifts) < 0.1, trained.layout_shifts
    updating = [score for at, score in trained.layout_shifts if at > trained.polls[0]["at_ms"]]
    assert sum(updating) < 0.01, trained.layout_shifts


def test_version_page_renders_every_plot_with_the_api_data(
    ui: Ui, uploaded: Uploaded, trained: Trained, api: httpx.Client, california_frame: pd.DataFrame
) -> None:
    path = f"/models/{MODEL}/versions/{trained.version}"
    page = ui.open(path, "version")
    evaluation = api.get(f"/api/v1{path}/evaluation").json()
    assert (evaluation["task"], evaluation["cv"]["folds"]) == ("regression", CV_FOLDS)
    kinds = page.locator("div.plot[data-plot]").evaluate_all(
        "els => els.map(el => el.dataset.plot)"
    )
    assert sorted(kinds) == sorted(REGRESSION_PLOTS | {"shap_summary"}), kinds
    drawn = {kind: plot_summary(page.locator(f"div.plot[data-plot={kind}]")) for kind in kinds}
    # The SHAP summary recorded at training: one bar per input feature.
    assert drawn["shap_summary"]["bars"] == len(evaluation["shap_summary"]["features"])
    for kind, summary in drawn.items():
        assert summary["svg"] >= 1 and summary["marks"] > 0, (kind, summary)
    scatter = drawn["predicted_vs_actual"]
    assert scatter["points"] == len(evaluation["predicted_vs_actual"]["actual"]) > 0
    assert scatter["lines"] >= 1, "no identity line"
    assert drawn["residuals"]["bars"] > 0
    assert drawn["permutation_importance"]["marks"] > 0
    assert drawn["cv"]["marks"] > 0

    for feature in features(california_frame):  # the signature table
        expect(page.get_by_role("cell", name=feature, exact=True).first).to_be_visible()
    expect(page.locator(f'main a[href$="/datasets/{uploaded.dataset_id}"]').first).to_be_visible()
    expect(page.locator(f'main a[href$="/jobs/{trained.job_id}"]').first).to_be_visible()
    described = api.get(f"/api/v1{path}").json()
    assert sorted(i["name"] for i in described["signature"]["inputs"]) == sorted(
        features(california_frame)
    )
    # The hyper-parameter set in the form reached the estimator; the others kept defaults.
    assert (described["params"]["max_iter"], described["params"]["learning_rate"]) == (
        MAX_ITER,
        0.1,
    )
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="max_iter", exact=True))
    expect(row.get_by_role("cell", name=str(MAX_ITER), exact=True)).to_be_visible()
    # No feedback was ever sent for this model: the live metrics say so.
    live = api.get(f"/api/v1{path}/live-metrics").json()
    assert (live["n_samples"], live["metrics"]) == (0, None)
    expect(page.get_by_test_id("live-empty")).to_contain_text("No feedback yet")
    expect(page.get_by_test_id("live-metrics")).to_have_count(0)
    expect(page.locator("#plots-note")).to_contain_text("test split")


def test_set_production_alias_after_confirmation(
    ui: Ui, trained: Trained, api: httpx.Client
) -> None:
    page = ui.open(f"/models/{MODEL}/versions/{trained.version}")
    alias = page.get_by_label("Alias", exact=True)
    expect(alias).to_have_value("production")
    page.get_by_role("button", name="Set alias", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    ui.shots.take(page, "confirm")
    assert api.get(f"/api/v1/models/{MODEL}").json()["aliases"] == {}, "set before confirming"
    dialog.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_test_id("aliases")).to_contain_text("production")
    expect(dialog).to_be_hidden()
    ui.shots.take(page, "alias-set")
    assert api.get(f"/api/v1/models/{MODEL}").json()["aliases"] == {"production": trained.version}

    page = ui.open(f"/models/{MODEL}/versions/{trained.version}")
    expect(page.get_by_test_id("aliases")).to_contain_text("production")
    page = ui.open("/", "home")
    expect(page.locator("main")).to_contain_text(MODEL)


def open_predict_form(ui: Ui, trained: Trained) -> Page:
    """The version page's "Predict with this version" link."""
    page = ui.open(f"/models/{MODEL}/versions/{trained.version}")
    page.get_by_role("link", name="Predict with this version", exact=True).click()
    page.wait_for_url(re.compile(rf"/models/{MODEL}/predict\?version={trained.version}$"))
    ui.settle()
    return page


def fill_row(page: Page, row: pd.Series) -> None:
    """Every feature input of the predict form, from one california row."""
    for name, value in row.items():
        field = page.get_by_label(str(name), exact=True)
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(repr(float(value)))


def test_predict_one_row_equals_the_api(
    ui: Ui, trained: Trained, api: httpx.Client, california_frame: pd.DataFrame
) -> None:
    row = california_frame.dropna().iloc[1234]
    page = open_predict_form(ui, trained)
    fill_row(page, row[features(california_frame)])
    ui.shots.take(page, "filled")
    page.get_by_role("button", name="Predict", exact=True).click()
    shown = page.get_by_test_id("prediction")
    expect(shown).to_have_text(re.compile(r"\d"))
    ui.shots.take(page, "predicted")
    [expected] = api_predictions(api, row.to_frame().T.infer_objects(), trained.version)
    assert float(shown.inner_text().strip()) == expected
    # Under the prediction, the waterfall of the feature contributions (POST .../explain).
    expect(page.locator("#explanation-note")).to_contain_text("SHAP explainer", timeout=30_000)
    drawn = plot_summary(page.get_by_test_id("explanation"))
    assert drawn["svg"] >= 1 and drawn["bars"] >= len(features(california_frame)), drawn
    ui.shots.take(page, "explained")


def test_batch_prediction_downloads_the_csv_with_predictions(
    ui: Ui, trained: Trained, api: httpx.Client, california_frame: pd.DataFrame, tmp_path: Path
) -> None:
    missing = california_frame[california_frame["total_bedrooms"].isna()]
    rows = pd.concat([california_frame.iloc[:48], missing.iloc[:2]])
    upload = tmp_path / "houses.csv"
    rows.to_csv(upload, index=False)
    sent = pd.read_csv(upload)

    page = open_predict_form(ui, trained)
    page.get_by_label("CSV file", exact=True).set_input_files(upload)
    with page.expect_download() as started:
        page.get_by_role("button", name="Predict CSV", exact=True).click()
    download = started.value
    assert download.failure() is None
    assert download.suggested_filename == f"{MODEL}-v{trained.version}-predictions.csv"
    got = pd.read_csv(io.BytesIO(download.path().read_bytes()))
    ui.shots.take(page, "downloaded")

    assert list(got.columns) == [*sent.columns, "prediction"]
    pd.testing.assert_frame_equal(got[sent.columns], sent)
    expected = api_predictions(api, sent, trained.version)
    assert np.array_equal(got["prediction"].to_numpy(), np.asarray(expected, dtype=float))


# --------------------------------------------------------------------------- errors, a11y


@pytest.mark.parametrize(
    ("label", "value", "field"),
    [
        ("Cross-validation folds", "1", "cv_folds"),
        (re.compile(r"^learning_rate\b"), "0", "params.learning_rate"),  # range (0, inf)
    ],
    ids=["cv_folds", "learning_rate"],
)
def test_train_form_shows_the_api_error_next_to_the_field(
    ui: Ui,
    uploaded: Uploaded,
    api: httpx.Client,
    label: str | re.Pattern[str],
    value: str,
    field: str,
) -> None:
    """Values only the API rejects (the inputs' own ranges allow them)."""
    ui.guard.expect_status("/api/v1/training-jobs", 422)
    jobs_before = api.get("/api/v1/training-jobs").json()["jobs"]
    page = ui.open(f"/train?dataset={uploaded.dataset_id}")
    choose_training(page, "rejected")
    exact = isinstance(label, str)
    field_input = page.get_by_label(label, exact=exact)
    field_input.fill(value)
    page.get_by_role("button", name="Start training", exact=True).click()
    error = page.locator(f'[id="error-{field}"]')
    expect(error).to_be_visible()
    expect(error).to_have_attribute("role", "alert")
    expect(error).to_have_text(re.compile(r"\S"))
    assert near(field_input, error)
    assert urlsplit(page.url).path == "/train"
    ui.shots.take(page, "error")
    assert api.get("/api/v1/training-jobs").json()["jobs"] == jobs_before


def test_keyboard_reaches_sign_in_upload_and_predict_with_visible_focus(
    browser: Browser, service: Service, ui: Ui, trained: Trained, california_frame: pd.DataFrame
) -> None:
    assert service.key is not None
    with browsing(browser, service) as (context, _):  # signed out: sign in by keyboard alone
        page = context.new_page()
        page.goto("/login")
        tab_to(page, page.get_by_label("API key", exact=True))
        page.keyboard.type(service.key)
        focus = tab_to(page, page.get_by_role("button", name="Sign in", exact=True))
        assert focus["focus_visible"] and (focus["outline"] or focus["shadow"]), focus
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: urlsplit(url).path != "/login")

    page = ui.open("/datasets")
    focus = tab_to(page, page.get_by_role("button", name="Upload", exact=True))
    assert focus["focus_visible"] and (focus["outline"] or focus["shadow"]), focus
    ui.shots.take(page, "upload-focused")

    page = open_predict_form(ui, trained)
    fill_row(page, california_frame.dropna().iloc[7][features(california_frame)])
    focus = tab_to(page, page.get_by_role("button", name="Predict", exact=True))
    assert focus["focus_visible"] and (focus["outline"] or focus["shadow"]), focus
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("prediction")).to_have_text(re.compile(r"\d"))
    ui.shots.take(page, "predict-focused")


def every_page(uploaded: Uploaded, trained: Trained, online: Online) -> list[tuple[str, str]]:
    v = trained.version
    return [
        ("model-online", f"/models/{ONLINE_MODEL}"),
        ("version-online", f"/models/{ONLINE_MODEL}/versions/{online.version}"),
        ("home", "/"),
        ("datasets", "/datasets"),
        ("dataset", f"/datasets/{uploaded.dataset_id}"),
        ("train", f"/train?dataset={uploaded.dataset_id}"),
        ("job", f"/jobs/{trained.job_id}"),
        ("models", "/models"),
        ("model", f"/models/{MODEL}"),
        ("version", f"/models/{MODEL}/versions/{v}"),
        ("compare", f"/models/{MODEL}/compare?a={v}&b={v}"),
        ("predict", "/predict"),
        ("predict-model", f"/models/{MODEL}/predict?version={v}"),
        ("api-access", "/api-access"),
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_renders_cleanly(
    browser: Browser,
    service: Service,
    signed_in: StorageState,
    uploaded: Uploaded,
    trained: Trained,
    online: Online,
    shots_folder: Path,
    viewport: ViewportSize,
) -> None:
    """Landmarks, navigation and labels of each page, no horizontal scroll; the guard
    checks console errors and requests."""
    shots = Shots(shots_folder, f"pages-{viewport['width']}x{viewport['height']}")
    with browsing(browser, service, signed_in, viewport) as (context, guard):
        page = context.new_page()
        ui = Ui(page, guard, shots)
        for name, path in every_page(uploaded, trained, online):
            ui.open(path, name)
            expect(page.get_by_role("main")).to_have_count(1)
            nav = page.get_by_role("navigation").first
            for label in NAV_LINKS:
                expect(nav.get_by_role("link", name=label, exact=True)).to_have_count(1)
            assert horizontal_overflow(page) == 0, f"{path} scrolls sideways at {viewport}"
            assert unlabelled_inputs(page) == [], path

        page.goto("/")  # the navigation is reachable at this width, maybe behind a toggle
        link = page.get_by_role("navigation").first.get_by_role("link", name="Datasets")
        if not link.is_visible():  # a disclosure button (aria-expanded) may show the links
            page.locator("header button[aria-expanded], nav button[aria-expanded]").first.click()
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        shots.take(page, "navigation")
        link.click()
        page.wait_for_url("**/datasets")


def test_api_page_snippets_copy_and_run(
    ui: Ui, trained: Trained, service: Service, api: httpx.Client
) -> None:
    """The housing model's curl and Python snippets (other models of the module have theirs
    in sections of their own), copied with their button, run as they are (the key in
    MLSERVE_API_KEY) and answer what the API answers for their row."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    ui.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = ui.open("/api-access", "api-access")
    copied: list[str] = []
    section = page.locator(f'main section[id="model-{MODEL}"]')
    for button in section.get_by_role("button", name="Copy").all():
        button.click()
        copied.append(page.evaluate("() => navigator.clipboard.readText()"))
        assert copied[-1].strip() and copied[-1].strip() in page.locator("main").inner_text()
    [curl] = [c for c in copied if c.lstrip().startswith("curl ")]
    [python] = [c for c in copied if "mlserve.client" in c]
    assert service.key is not None
    env = {**os.environ, "MLSERVE_API_KEY": service.key}

    url = re.search(r"'(https?://[^']+)'", curl)
    body = re.search(r"-d '(.+)'", curl, re.DOTALL)
    assert url is not None and body is not None and url[1].startswith(service.url), curl
    done = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = api.post(url[1].removeprefix(service.url), json=json.loads(body[1])).json()
    assert json.loads(done.stdout)["predictions"] == expected["predictions"]

    done = subprocess.run([sys.executable, "-c", python], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    row, selector = snippet_call(python)
    expected = api.post(
        f"/api/v1/models/{MODEL}/predict", params=selector, json={"instances": [row]}
    ).json()
    assert ast.literal_eval(done.stdout.strip()) == expected["predictions"]


def snippet_call(source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Python snippet's ``row = {...}`` and the keywords of its ``client.predict``."""
    tree = ast.parse(source)
    [row] = [
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "row"
    ]
    [selector] = [
        {str(kw.arg): ast.literal_eval(kw.value) for kw in node.keywords}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(".predict")
    ]
    return row, selector


def test_api_page_links_the_swagger_ui(ui: Ui, trained: Trained) -> None:
    page = ui.open("/api-access")
    page.locator('main a[href$="/docs"]').first.click()
    page.wait_for_url("**/docs")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    ui.shots.take(page, "swagger")


# --------------------------------------------------------------------------- classification

CLASSIFICATION_PLOTS = {
    "confusion_matrix",
    "roc",
    "precision_recall",
    "permutation_importance",
    "cv",
}


def train_classifier(
    api: httpx.Client, name: str, frame: pd.DataFrame, algorithm: str = "logistic_regression"
) -> int:
    """Upload ``frame`` (target column ``target``) and train ``algorithm`` on it through
    the API; return the version once the job succeeded."""
    sent = api.post(
        "/api/v1/datasets",
        files={"file": (f"{name}.csv", frame.to_csv(index=False).encode(), "text/csv")},
        data={"name": name},
    )
    assert sent.status_code == 201, sent.text
    spec = {
        "dataset_id": sent.json()["id"],
        "target": "target",
        "algorithm": algorithm,
        "model_name": name,
        "cv_folds": 3,
    }
    job = api.post("/api/v1/training-jobs", json=spec).json()
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while job["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = api.get(f"/api/v1/training-jobs/{job['id']}").json()
    assert job["status"] == "succeeded", job
    version: int = job["model_version"]
    return version


def labelled(loader: str) -> tuple[pd.DataFrame, list[str]]:
    """A scikit-learn bundled dataset with its class names as the ``target`` column."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{loader}")(as_frame=True)
    frame = bunch.frame.drop(columns="target")
    frame["target"] = [str(bunch.target_names[i]) for i in bunch.target]
    return frame, [str(name) for name in bunch.target_names]


@pytest.mark.parametrize("loader", ["breast_cancer", "iris"])
def test_version_page_renders_classification_plots(ui: Ui, api: httpx.Client, loader: str) -> None:
    frame, classes = labelled(loader)
    version = train_classifier(api, loader, frame)
    path = f"/models/{loader}/versions/{version}"
    page = ui.open(path, f"version-{loader}")
    evaluation = api.get(f"/api/v1{path}/evaluation").json()
    kinds = page.locator("div.plot[data-plot]").evaluate_all(
        "els => els.map(el => el.dataset.plot)"
    )
    assert sorted(kinds) == sorted(CLASSIFICATION_PLOTS | {"shap_summary"}), kinds
    drawn = {kind: plot_summary(page.locator(f"div.plot[data-plot={kind}]")) for kind in kinds}
    for kind, summary in drawn.items():
        assert summary["svg"] >= 1 and summary["marks"] > 0, (kind, summary)
    assert drawn["confusion_matrix"]["heatmaps"] == 1
    # One curve per class one-vs-rest (multiclass), one for the positive class (binary).
    n_curves = 1 if len(classes) == 2 else len(classes)
    assert len(evaluation["roc"]) == len(evaluation["precision_recall"]) == n_curves
    assert drawn["roc"]["lines"] >= n_curves
    assert drawn["precision_recall"]["lines"] >= n_curves


TORCH_PARAMS = {  # the torch_mlp form: every hyper-parameter but the server's device
    "hidden_layer_sizes", "activation", "dropout", "batch_norm", "optimizer", "learning_rate",
    "lr_schedule", "weight_decay", "batch_size", "max_epochs", "patience",
    "validation_fraction", "tol", "partial_fit_epochs", "random_state",
}  # fmt: skip


@pytest.mark.once(reason="a torch fit and a plot: nothing of the database")
def test_train_form_offers_torch_mlp_and_the_version_page_plots_its_training_curve(
    ui: Ui, api: httpx.Client
) -> None:
    frame, _classes = labelled("breast_cancer")
    sent = api.post(
        "/api/v1/datasets",
        files={"file": ("cancer.csv", frame.to_csv(index=False).encode(), "text/csv")},
        data={"name": "cancer"},
    )
    assert sent.status_code == 201, sent.text
    page = ui.open(f"/train?dataset={sent.json()['id']}")
    page.get_by_label("Target", exact=True).select_option("target")
    page.get_by_label("Algorithm", exact=True).select_option("torch_mlp")
    expect(page.locator("#algorithm-hint")).to_contain_text("TorchMLPClassifier")
    names = page.locator("#params input, #params select").evaluate_all(
        "els => els.map(el => el.name)"
    )
    assert set(names) == TORCH_PARAMS, names
    layers = hyper_parameter(page, "hidden_layer_sizes")
    expect(layers).to_have_value("256, 128")
    expect(page.locator("#param-hidden_layer_sizes-hint")).to_contain_text("each in [1, 4096]")
    layers.fill("64, 32")
    hyper_parameter(page, "max_epochs").fill("60")
    page.get_by_label("Cross-validation folds", exact=True).fill("0")
    page.get_by_label("Model name", exact=True).fill("cancer-net")
    ui.shots.take(page, "train-torch")
    page.get_by_role("button", name="Start training", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/[^/?#]+$"))
    assert watch_job(page, JOB_TIMEOUT_S)[-1]["status"] == "succeeded"
    page.get_by_role("link", name="Open model version", exact=True).click()
    page.wait_for_url(re.compile(r"/models/cancer-net/versions/1$"))
    ui.settle()
    ui.shots.take(page, "version-torch")
    version = api.get("/api/v1/models/cancer-net/versions/1").json()
    assert (version["params"]["hidden_layer_sizes"], version["params"]["max_epochs"]) == (
        [64, 32],
        60,
    )
    training = api.get("/api/v1/models/cancer-net/versions/1/evaluation").json()["training"]
    curve = page.locator("div.plot[data-plot=training]")
    drawn = plot_summary(curve)
    assert drawn["svg"] >= 1 and drawn["lines"] == 2, drawn  # train and validation loss
    expect(curve.locator("g.shapelayer path")).to_have_count(1)  # the best epoch
    expect(curve).to_contain_text(f"best epoch {training['best_epoch']}")
    caption = page.locator("figure").filter(has=curve)
    expect(caption).to_contain_text(f"each of the {training['epochs']} epochs")
    expect(caption).to_contain_text(
        f"Trained on cpu (1 CPU thread), torch {training['torch_version']}"
    )


@pytest.mark.once(reason="three small fits and two tables: nothing of the database")
def test_train_form_auto_shows_the_leaderboard_on_the_job_and_version_pages(
    ui: Ui, api: httpx.Client
) -> None:
    frame, _classes = labelled("iris")
    sent = api.post(
        "/api/v1/datasets",
        files={"file": ("iris-auto.csv", frame.to_csv(index=False).encode(), "text/csv")},
        data={"name": "iris-auto"},
    )
    assert sent.status_code == 201, sent.text
    page = ui.open(f"/train?dataset={sent.json()['id']}")
    page.get_by_label("Target", exact=True).select_option("target")
    budget = page.get_by_label("Time budget (s)", exact=True)
    expect(budget).to_be_hidden()
    page.get_by_label("Algorithm", exact=True).select_option("auto")
    expect(budget).to_be_visible()
    budget.fill("120")
    expect(page.locator("#params")).to_contain_text("None to set.")
    page.get_by_label("Cross-validation folds", exact=True).fill("3")
    page.get_by_label("Model name", exact=True).fill("iris-auto")
    page.get_by_role("button", name="Start training", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/[^/?#]+$"))
    assert watch_job(page, JOB_TIMEOUT_S)[-1]["status"] == "succeeded"
    job_id = urlsplit(page.url).path.rsplit("/", 1)[-1]
    job = api.get(f"/api/v1/training-jobs/{job_id}").json()
    assert (job["spec"]["algorithm"], job["spec"]["time_budget_s"]) == ("auto", 120)
    board = job["report"]["leaderboard"]
    for where in ("job", "version"):
        table = page.get_by_test_id("leaderboard")
        expect(table.locator("tbody tr")).to_have_count(len(board))
        expect(table.locator("thead")).to_contain_text("CV f1_macro mean")
        first = table.locator("tbody tr").first
        expect(first.locator("td").nth(1)).to_have_text(board[0]["algorithm"])
        expect(first).to_contain_text("trained")
        ui.shots.take(page, f"{where}-auto")
        if where == "job":
            page.get_by_role("link", name="Open model version", exact=True).click()
            page.wait_for_url(re.compile(r"/models/iris-auto/versions/1$"))
            ui.settle()
    version = api.get("/api/v1/models/iris-auto/versions/1").json()
    assert version["algorithm"] == board[0]["algorithm"]


def test_model_page_sorts_versions_and_compares_two(ui: Ui, api: httpx.Client) -> None:
    frame, _ = labelled("wine")
    for algorithm in ("logistic_regression", "knn"):
        train_classifier(api, "wine", frame, algorithm)
    accuracy = {
        v["version"]: v["metrics"]["accuracy"]
        for v in api.get("/api/v1/models/wine/versions").json()["versions"]
    }
    page = ui.open("/models/wine", "model")
    table = page.locator("#versions table")
    header = table.get_by_role("columnheader").filter(has_text="accuracy").first
    shown: list[list[float]] = []
    for _ in range(2):  # ascending, then descending (or the other way round)
        header.get_by_role("button").click()
        expect(header).to_have_attribute("aria-sort", re.compile("ascending|descending"))
        index = table.get_by_role("columnheader").all_inner_texts().index(header.inner_text())
        cells = table.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()
        shown.append([float(text) for text in cells])
    first, second = shown  # each click turns the order round
    assert len(first) == len(accuracy) == 2 and first != second, (shown, accuracy)
    assert first == sorted(first, reverse=first[0] > first[-1]) and second == first[::-1]
    assert sorted(first) == pytest.approx(sorted(accuracy.values()), abs=5e-4)

    page.get_by_label("Version A", exact=True).select_option("1")
    page.get_by_label("Version B", exact=True).select_option("2")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url("**/models/wine/compare?a=1&b=2")
    ui.settle()
    ui.shots.take(page, "compare")
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="Algorithm", exact=True))
    expect(row.get_by_role("cell", name="logistic_regression", exact=True)).to_be_visible()
    expect(row.get_by_role("cell", name="knn", exact=True)).to_be_visible()


# --------------------------------------------------------------------------- online learning


@dataclass
class Online:
    version: int  # made by an online update
    parent: int
    features: list[str]
    n_feedback: int  # predicted rows of ``version`` that received their true value


def shown_number(text: str) -> float:
    """A number as the UI shows it (``Intl.NumberFormat("en")``: "1,234.5", "0.4321")."""
    return float(text.strip().replace(",", ""))


def wait_for_head(api: httpx.Client, name: str, version: int, timeout_s: float = 60) -> None:
    """Wait until the worker's online update made ``version`` the head of ``name``."""
    deadline = time.monotonic() + timeout_s
    while (state := api.get(f"/api/v1/models/{name}/online").json())["head_version"] < version:
        assert state["last_error"] is None, state
        assert time.monotonic() < deadline, f"no online update after {timeout_s} s: {state}"
        time.sleep(0.2)


def send_feedback(api: httpx.Client, prediction_id: str, targets: list[float]) -> None:
    """Feedback once the prediction is logged (the log writer batches for up to 0.25 s)."""
    deadline = time.monotonic() + 10
    while True:
        sent = api.post(f"/api/v1/predictions/{prediction_id}/feedback", json={"targets": targets})
        if sent.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sent.status_code == 200, sent.text


@pytest.fixture(scope="module")
def online(api: httpx.Client) -> Online:
    """``sgd_regressor`` trained on 192 diabetes rows through the API; the other 250 sent
    as samples in two batches (150, then 100) make the worker's online updates consume
    100 each and hold the newest 50 out as the guard window (versions 2 and 3); 150 rows
    predicted by the first of them then get their true values."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.sample(frac=1.0, random_state=0)
    features = [c for c in frame.columns if c != "target"]
    parent = train_classifier(api, ONLINE_MODEL, frame.iloc[:192], "sgd_regressor")
    for batch, head in ((frame.iloc[192:342], parent + 1), (frame.iloc[342:], parent + 2)):
        stored = api.post(
            f"/api/v1/models/{ONLINE_MODEL}/samples",
            json={
                "instances": batch[features].to_dict(orient="records"),
                "targets": batch["target"].tolist(),
            },
        )
        assert stored.status_code == 201 and stored.json()["update_queued"] is True, stored.text
        wait_for_head(api, ONLINE_MODEL, head)
    asked = frame.iloc[:150]
    predicted = api.post(
        f"/api/v1/models/{ONLINE_MODEL}/predict",
        params={"version": parent + 1},
        json={"instances": asked[features].to_dict(orient="records")},
    ).json()
    assert predicted["model_version"] == parent + 1, predicted
    send_feedback(api, predicted["prediction_id"], asked["target"].tolist())
    return Online(parent + 1, parent, features, len(asked))


def row_of(table: Locator, first_cell: str) -> Locator:
    """The row of ``table`` whose first cell reads ``first_cell``."""
    return table.locator("tbody tr").filter(
        has=table.page.get_by_role("cell", name=first_cell, exact=True)
    )


def test_online_version_page_shows_live_metrics_drift_lineage_and_plots(
    ui: Ui, api: httpx.Client, online: Online
) -> None:
    path = f"/models/{ONLINE_MODEL}/versions/{online.version}"
    page = ui.open(path, "version-online")
    version = api.get(f"/api/v1{path}").json()
    assert version["online"]["parent_version"] == online.parent and version["has_evaluation"]

    # Live metrics: the API's numbers over the 150 rows with feedback.
    live = api.get(f"/api/v1{path}/live-metrics").json()
    assert live["n_samples"] == online.n_feedback
    expect(page.get_by_test_id("live-rows")).to_contain_text(f"{online.n_feedback} rows")
    table = page.get_by_test_id("live-metrics")
    names = [name for name in live["metrics"] if name != "n_samples"]
    assert set(names) == {"rmse", "mae", "r2"}
    for name in names:
        cells = row_of(table, name).locator("td")
        assert shown_number(cells.nth(1).inner_text()) == pytest.approx(
            live["metrics"][name], rel=1e-3
        ), name
        recorded = version["metrics"][name]  # on the guard window, when registered
        assert shown_number(cells.nth(2).inner_text()) == pytest.approx(recorded, rel=1e-3)

    # Drift of the logged inputs (the 150 predicted rows): one row per feature.
    drift = api.get(f"/api/v1{path}/drift").json()
    assert drift["enough_rows"] and drift["window"]["rows"] == online.n_feedback
    table = page.get_by_test_id("drift-table")
    assert sorted(table.locator("tbody tr td:first-child").all_inner_texts()) == sorted(
        online.features
    )
    for name, measured in drift["features"].items():
        cells = row_of(table, name).locator("td")
        assert shown_number(cells.nth(2).inner_text()) == pytest.approx(measured["psi"], rel=1e-3)
        assert shown_number(cells.nth(4).inner_text()) == pytest.approx(
            measured["ks_statistic"], rel=1e-3
        )
        flagged = cells.nth(7).inner_text()
        assert ("PSI drift" in flagged, "KS drift" in flagged) == (
            measured["drift"],
            measured["ks_drift"],
        ), name
    expect(page.get_by_test_id("drift-summary")).to_contain_text(
        f"{len(drift['drifted'])} of {len(online.features)}"
    )
    thresholds = page.get_by_test_id("drift-thresholds")
    expect(thresholds).to_contain_text(drift["thresholds"]["psi"]["source"])
    expect(thresholds).to_contain_text(drift["thresholds"]["ks"]["source"])

    # Lineage and the guard's decision.
    lineage = version["online"]
    parent = page.get_by_test_id("parent-version")
    expect(parent).to_have_attribute("href", f"/models/{ONLINE_MODEL}/versions/{online.parent}")
    expect(page.locator("#lineage")).to_contain_text(
        f"samples #{lineage['first_sample_id']} to #{lineage['last_sample_id']} "
        f"({lineage['n_samples']})"
    )
    expect(page.locator("#lineage")).to_contain_text("Unseen categories")
    expect(page.get_by_test_id("guard-status")).to_have_text(lineage["status"])
    expect(page.get_by_test_id("guard-reason")).to_have_text(lineage["reason"])

    # The plots: evaluation on the guard window (no cross-validation) and PSI per feature.
    kinds = page.locator("div.plot[data-plot]").evaluate_all(
        "els => els.map(el => el.dataset.plot)"
    )
    assert sorted(kinds) == sorted(REGRESSION_PLOTS - {"cv"} | {"drift"}), kinds
    drawn = {kind: plot_summary(page.locator(f"div.plot[data-plot={kind}]")) for kind in kinds}
    for kind, summary in drawn.items():
        assert summary["svg"] >= 1 and summary["marks"] > 0, (kind, summary)
    assert drawn["drift"]["bars"] == len(online.features)
    evaluation = api.get(f"/api/v1{path}/evaluation").json()
    assert (evaluation["rows"], evaluation["n_test"]) == ("guard window", 50)
    assert drawn["predicted_vs_actual"]["points"] == 50
    expect(page.locator("#plots-note")).to_contain_text("guard window")
    evaluations = [url for url in ui.guard.requests if url.endswith("/evaluation")]
    assert len(evaluations) == 1, evaluations


def test_model_page_shows_the_online_state_and_updates_now(
    ui: Ui, api: httpx.Client, online: Online, trained: Trained
) -> None:
    state = api.get(f"/api/v1/models/{ONLINE_MODEL}/online").json()
    page = ui.open(f"/models/{ONLINE_MODEL}", "model-online")
    expect(page.get_by_test_id("online-head")).to_have_text(f"v{state['head_version']}")
    expect(page.get_by_test_id("online-pending")).to_have_text(str(state["pending"]))
    # The prequential error of the stream: each update's samples, scored before learning.
    prequential = state["prequential"]
    assert [u["n_samples"] for u in prequential["by_update"]] == [100, 100]
    assert prequential["n_samples"] == state["cursor"] == 200
    summary = page.get_by_test_id("prequential-summary")
    expect(summary).to_contain_text("over 200 samples, each predicted by the version live")
    shown = re.match(r"rmse ([\d,.]+) over", summary.inner_text())
    assert shown and shown_number(shown[1]) == pytest.approx(prequential["value"], rel=1e-3)
    drawn = plot_summary(page.locator("div.plot[data-plot=prequential]"))
    assert drawn["svg"] >= 1 and drawn["points"] == 2 and drawn["lines"] == 2, drawn
    page.get_by_role("button", name="Update now", exact=True).click()
    expect(page.locator("#online-update-status")).to_contain_text("Update queued")
    expect(page.locator("#error-online-update")).to_have_text("")

    # A model that cannot learn incrementally: the button is disabled and says why (the
    # API would answer 409 with the retrain hint).
    page = ui.open(f"/models/{MODEL}")
    expect(page.get_by_test_id("online-not-incremental")).to_contain_text(ALGORITHM)
    button = page.get_by_role("button", name="Update now", exact=True)
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("cannot learn incrementally"))
    refused = api.post(f"/api/v1/models/{MODEL}/online-update")
    assert refused.status_code == 409
    assert "cannot learn incrementally" in refused.json()["error"]["message"]
    ui.shots.take(page, "update-refused")


# --------------------------------------------------------------------------- accessibility


def test_every_page_passes_axe_without_serious_violations(
    ui: Ui, uploaded: Uploaded, trained: Trained, online: Online
) -> None:
    """axe-core (Deque's WCAG 2 rules: contrast, labels, names, landmarks...) on every
    page, once its plots are drawn; serious and critical violations fail."""
    axe_module = pytest.importorskip(
        "axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed"
    )
    axe = axe_module.Axe()
    found: dict[str, list[str]] = {}
    for name, path in every_page(uploaded, trained, online):
        ui.open(path)
        violations = axe.run(ui.page).response["violations"]
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[node['target'] for node in v['nodes']][:3]}"
            for v in violations
            if v["impact"] in ("serious", "critical")
        ]
        if serious:
            found[name] = serious
    assert found == {}, json.dumps(found, indent=1)


# --------------------------------------------------------------------------- traffic policies


def test_traffic_page_compares_the_versions_of_a_canary(ui: Ui, api: httpx.Client) -> None:
    frame, _ = labelled("iris")
    first = train_classifier(api, "iris_traffic", frame)
    second = train_classifier(api, "iris_traffic", frame, algorithm="decision_tree")
    alias = "/api/v1/models/iris_traffic/aliases/production"
    policy = {"version": first, "canary": {"version": second, "weight": 0.5}}
    assert api.put(alias, json=policy).status_code == 200
    rows = frame.drop(columns="target").head(1).to_dict("records")
    answered = set()
    for i in range(40):
        body = {"instances": rows, "routing_key": f"k{i}"}
        answer = api.post("/api/v1/models/iris_traffic/predict", json=body).json()
        answered.add(answer["model_version"])
    assert answered == {first, second}
    page = ui.open("/models/iris_traffic/aliases/production/traffic", "traffic")
    expect(page.get_by_test_id("policy")).to_contain_text(f"Primary v{first}")
    kinds = wait_for_plots(page)
    assert sorted(kinds) == ["agreement", "latency", "live", "requests"], kinds
    for kind in ("requests", "latency", "agreement"):
        drawn = plot_summary(page.locator(f"div.plot[data-plot={kind}]"))
        assert drawn["svg"] >= 1 and drawn["bars"] > 0, (kind, drawn)
    expect(page.get_by_role("cell", name=f"v{second}", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="candidate", exact=True)).to_be_visible()


def test_cancel_button_stops_a_running_job(ui: Ui, api: httpx.Client) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((4000, 8)), columns=[f"x{i}" for i in range(8)])
    frame["target"] = frame.sum(axis=1) + rng.random(4000)
    sent = api.post(
        "/api/v1/datasets",
        files={"file": ("slow.csv", frame.to_csv(index=False).encode(), "text/csv")},
        data={"name": "slow"},
    )
    assert sent.status_code == 201, sent.text
    spec = {
        "dataset_id": sent.json()["id"],
        "target": "target",
        "algorithm": "random_forest",
        "params": {"n_estimators": 400},  # minutes of work: still running when clicked
        "model_name": "slow",
        "cv_folds": 10,
    }
    job = api.post("/api/v1/training-jobs", json=spec).json()
    page = ui.open(f"/jobs/{job['id']}")
    button = page.get_by_role("button", name="Cancel", exact=True)
    expect(button).to_be_visible()
    button.click()
    expect(page.get_by_test_id("job-status")).to_have_text("cancelled")
    expect(button).to_be_hidden()
    ui.shots.take(page, "job-cancelled")
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while api.get(f"/api/v1/training-jobs/{job['id']}").json()["stage"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert api.get("/api/v1/models/slow").status_code == 404
