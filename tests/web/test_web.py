"""The web UI's pages and assets, through Flask's test client (the browser suite is
tests/e2e/test_browser.py): who may open them, what they declare, their headers, and
the files they load."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sklearn.datasets import load_diabetes

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.api.security import permission_of
from mlserve.monitoring import live as monitoring
from mlserve.security import keys as auth
from mlserve.settings import Settings
from tests.conftest import frame_csv, keyed_client, train, upload
from tests.web.test_web_session import sign_in

STATIC = Path(__file__).resolve().parents[2] / "src" / "mlserve" / "web" / "static"
NAVIGATION = ["Home", "Datasets", "Train", "Models", "Predict", "API"]


class Page(HTMLParser):
    """What a test needs of a page: scripts, labels, form controls, links, landmarks."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_scripts: list[str] = []
        self.labels: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.links: list[tuple[str, str]] = []
        self.nav_links: list[str] = []
        self.tags: list[str] = []
        self._in: list[str] = []
        self._link: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(found)
        elif tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        elif tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.controls.append(found)
        elif tag == "a":
            self._link, self._text = found, []
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append(("".join(self._text).strip(), str(self._link.get("href"))))
            if "nav" in self._in:
                self.nav_links.append(self.links[-1][0])
            self._link = None
        if self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "script" and data.strip():
            self.inline_scripts.append(data)
        if self._link is not None:
            self._text.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An app with a dataset, a job and ``diabetes`` v1, and a viewer signed in."""
    home = tmp_path_factory.mktemp("web") / "home"
    app = create_app(Settings(home=home, jobs_immediate=True, log_level="WARNING"))
    admin = keyed_client(app)
    dataset = upload(admin, frame_csv(load_diabetes(as_frame=True).frame), "d.csv").get_json()
    job = train(
        admin, dataset["id"], target="target", algorithm="ridge", model_name="diabetes", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    viewer = app.test_client()
    key = auth.create_key(context_of(app), "viewer").secret
    assert sign_in(viewer, key).status_code == 303
    yield {"app": app, "viewer": viewer, "dataset": dataset["id"], "job": job["id"]}
    context_of(app).db.dispose()


# (endpoint, URL template, page script): every page of the UI.
PAGES = [
    ("web.home", "/", "home.js"),
    ("web.datasets", "/datasets", "datasets.js"),
    ("web.dataset", "/datasets/{dataset}", "dataset.js"),
    ("web.train", "/train?dataset={dataset}", "train.js"),
    ("web.job", "/jobs/{job}", "job.js"),
    ("web.models", "/models", "models.js"),
    ("web.model", "/models/diabetes", "model.js"),
    ("web.compare", "/models/diabetes/compare?a=1&b=1", "compare.js"),
    ("web.version", "/models/diabetes/versions/1", "version.js"),
    ("web.predict_picker", "/predict", "predict_picker.js"),
    ("web.predict", "/models/diabetes/predict?version=1", "predict.js"),
    ("web.api_access", "/api-access", "api_access.js"),
]
PLOTTED = {"web.dataset", "web.version", "web.model", "web.predict"}  # model: prequential
# error; predict: the waterfall of an explanation


def url_of(template: str, site: dict[str, Any]) -> str:
    return template.format(dataset=site["dataset"], job=site["job"])


def test_every_web_route_declares_a_permission(site: dict[str, Any]) -> None:
    app: Flask = site["app"]
    declared = {
        rule.endpoint: permission_of(app, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("web.")
    }
    expected = dict.fromkeys((endpoint for endpoint, _, _ in PAGES), "read")
    expected |= {"web.login": "public", "web.logout": "public", "web.plotly_js": "public"}
    expected["web.static"] = "public"
    expected["web.traffic"] = "read"  # needs an alias with a policy: tests/e2e/test_browser.py
    assert declared == expected


@pytest.mark.parametrize(("endpoint", "template", "script"), PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_for_a_signed_in_viewer(
    site: dict[str, Any], endpoint: str, template: str, script: str
) -> None:
    response = site["viewer"].get(url_of(template, site))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    page = Page(response.get_data(as_text=True))
    assert page.inline_scripts == []  # the CSP would block them: data goes in data-*
    sources = [s["src"] for s in page.scripts]
    assert f"/static/ui/js/{script}" in sources
    assert any(s and s.startswith("/static/vendor/plotly.min.js?v=") for s in sources) == (
        endpoint in PLOTTED
    )
    assert page.nav_links == NAVIGATION
    assert page.tags.count("main") == 1 and page.tags.count("nav") == 1
    unlabelled = [c for c in page.controls if c.get("id") not in page.labels]
    assert unlabelled == []
    assert "Sign out" in response.get_data(as_text=True)


@pytest.mark.parametrize(("endpoint", "template", "script"), PAGES, ids=[p[0] for p in PAGES])
def test_page_redirects_to_sign_in_when_signed_out(
    site: dict[str, Any], endpoint: str, template: str, script: str
) -> None:
    url = url_of(template, site)
    response = site["app"].test_client().get(url)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/login", {"next": [url]})


def test_predictor_role_gets_a_403_page(site: dict[str, Any]) -> None:
    """Pages need ``read``; a predictor's key is for programs (docs/ui.md)."""
    response = keyed_client(site["app"], "predictor").get("/models")
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert "role &#39;predictor&#39; may not do this" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/datasets/nope", "dataset &#39;nope&#39; not found"),
        ("/jobs/nope", "training job &#39;nope&#39; not found"),
        ("/models/nope", "model &#39;nope&#39; not found"),
        ("/models/nope/predict", "model &#39;nope&#39; not found"),
        ("/models/diabetes/versions/9", "model &#39;diabetes&#39; has no version 9"),
    ],
)
def test_unknown_objects_are_404_pages(site: dict[str, Any], url: str, message: str) -> None:
    response = site["viewer"].get(url)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert message in response.get_data(as_text=True)


def test_pages_pass_route_values_as_data_attributes(site: dict[str, Any]) -> None:
    html = site["viewer"].get("/models/diabetes/predict?version=1").get_data(as_text=True)
    assert 'data-model-name="diabetes" data-version="1" data-alias=""' in html
    html = site["viewer"].get('/models/diabetes/compare?a=1&b="><x').get_data(as_text=True)
    assert 'data-a="1" data-b=""' in html  # not an integer: dropped, never echoed


def options_of(html: str, select_id: str) -> list[tuple[str, bool]]:
    """``(value, selected)`` of each option of the ``<select id=select_id>`` of ``html``."""
    block = re.search(rf'<select id="{select_id}".*?</select>', html, re.DOTALL)
    assert block is not None, select_id
    return [
        (value, bool(selected))
        for value, selected in re.findall(r'<option value="([^"]*)"( selected)?', block[0])
    ]


@pytest.mark.parametrize("default", [1_000, 250])
def test_version_page_windows_offer_the_configured_default(
    site: dict[str, Any], default: int
) -> None:
    """Live metrics and drift windows: the setting's default selected, up to the API's
    maximum (a larger window would be a 422)."""
    settings = context_of(site["app"]).settings
    before = settings.live_metrics_window
    settings.live_metrics_window = default
    try:
        html = site["viewer"].get("/models/diabetes/versions/1").get_data(as_text=True)
    finally:
        settings.live_metrics_window = before
    expected = sorted({100, 1_000, 10_000, monitoring.MAX_WINDOW, default})
    for select in ("live-window", "drift-window"):
        options = options_of(html, select)
        assert [int(value) for value, _ in options] == expected
        assert [int(value) for value, selected in options if selected] == [default]
    assert options_of(html, "drift-source") == [("predictions", True), ("samples", False)]
    assert f'<option value="{default}" selected>{default:,} rows</option>' in html


def test_model_page_has_the_update_button_and_its_message_slots(site: dict[str, Any]) -> None:
    html = site["viewer"].get("/models/diabetes").get_data(as_text=True)
    assert re.search(r'<button type="button" id="online-update"[^>]*>Update now</button>', html)
    assert '<p class="field-error" id="error-online-update" role="alert"></p>' in html
    assert 'id="online-update-status" role="status"' in html


def test_model_page_has_the_import_form(site: dict[str, Any]) -> None:
    html = site["viewer"].get("/models/diabetes").get_data(as_text=True)
    assert '<h2 id="import-heading">Import a model</h2>' in html
    assert re.search(r'<input id="import-file" name="file" type="file" accept=".onnx,.skops"', html)
    for field in ("metadata", "sample"):
        assert f'<textarea id="import-{field}" name="{field}"' in html
        assert f'id="error-import-{field}" data-for="{field}" role="alert"' in html


def csp_directives(header: str) -> dict[str, list[str]]:
    parts = (d.split() for d in header.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.parametrize(
    ("url", "inline_scripts"),
    [("/login", False), ("/", False), ("/api/v1/models", False), ("/docs", True)],
)
def test_script_src_allows_inline_only_for_swagger(
    site: dict[str, Any], url: str, inline_scripts: bool
) -> None:
    response = site["viewer"].get(url)
    assert response.status_code == 200
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert ("'unsafe-inline'" in csp["script-src"]) == inline_scripts
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["default-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"]


def test_plotly_is_served_from_the_plotly_package(site: dict[str, Any]) -> None:
    bundle = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    client = site["app"].test_client()  # public: no session, no key
    response = client.get("/static/vendor/plotly.min.js?v=1")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert hashlib.sha256(response.data).digest() == hashlib.sha256(bundle).digest()
    cache = response.headers["Cache-Control"]
    assert "max-age=31536000" in cache and "immutable" in cache and "public" in cache
    again = client.get(
        "/static/vendor/plotly.min.js", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file())
)
def test_ui_assets_are_public_and_their_imports_exist(site: dict[str, Any], path: str) -> None:
    response = site["app"].test_client().get(f"/static/ui/{path}")
    assert response.status_code == 200
    expected = "text/javascript" if path.endswith(".js") else "text/css"
    assert response.mimetype == expected
    if path.endswith(".js"):
        text = response.get_data(as_text=True)
        assert "innerHTML" not in text and "eval(" not in text
        for imported in re.findall(r'from "(\.[^"]+)"', text):
            assert (STATIC / path).parent.joinpath(imported).resolve().is_file(), imported


def test_page_scripts_each_exist(site: dict[str, Any]) -> None:
    for _, _, script in PAGES:
        assert (STATIC / "js" / script).is_file(), script


def test_login_form_posts_are_not_refused_as_non_json(site: dict[str, Any]) -> None:
    """``require_json_body`` leaves the UI's HTML forms alone (a bad token: 403, not 415)."""
    client = site["app"].test_client()
    response = client.post("/login", data={"api_key": "x", "csrf_token": "y"})
    assert response.status_code == 403 and response.mimetype == "text/html"


def test_auth_off_pages_open_without_session(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "home", auth=False, log_level="WARNING"))
    try:
        client = app.test_client()
        for url in ("/", "/datasets", "/train", "/models", "/predict", "/api-access"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert "Sign out" not in response.get_data(as_text=True)
    finally:
        context_of(app).db.dispose()
