"""Drive mlserve's web UI in Debian's headless Chromium with Playwright (sync API).

What every browser test shares: where Chromium and the screenshots are, a guard that
fails a test on any console error, uncaught exception, server error or request to a
host other than mlserve's, and readers of what a page shows (Plotly plots, progress
bars, focus, horizontal overflow).

Environment
-----------
MLSERVE_TEST_CHROMIUM
    The Chromium executable (default ``/usr/bin/chromium``, Debian's package, which
    ``.ci/run`` installs when it is missing); the browser tests skip without it.
MLSERVE_TEST_ARTIFACTS
    Folder of the full-page screenshots (default ``test-artifacts/screenshots`` in the
    repository, ignored by git); one sub-folder per database backend.
"""

from __future__ import annotations

import base64
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    ViewportSize,
    WebError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MLSERVE_TEST_CHROMIUM") or "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("MLSERVE_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts" / "screenshots"
)
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# What Chromium logs when a response has an error status: a console error, expected
# only where a test provokes that status on purpose (Guard.expect_status).
FAILED_RESOURCE = re.compile(
    r"Failed to load resource: the server responded with a status of (\d+)"
)
# Schemes that never leave the browser: the page itself, inline data, downloads.
LOCAL_SCHEMES = ("about", "data", "blob")


@dataclass
class Guard:
    """Everything the pages of one browser context must not do.

    Attach with :meth:`watch`; :meth:`check` raises ``AssertionError`` listing every
    console error, uncaught exception, 5xx response and request to a host other
    than ``origin`` (``http://127.0.0.1:<port>``) seen since.
    """

    origin: str
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    expected: set[tuple[str, int]] = field(default_factory=set)

    def watch(self, context: BrowserContext) -> Guard:
        context.on("console", self._console)
        context.on("weberror", self._uncaught)
        context.on("request", self._request)
        context.on("response", self._response)
        return self

    def expect_status(self, path: str, status: int) -> None:
        """Allow the console error Chromium logs for a ``status`` response from ``path``."""
        self.expected.add((path, status))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = str(message.location.get("url") or "")
        failed = FAILED_RESOURCE.match(message.text)
        if failed and (urlsplit(url).path, int(failed.group(1))) in self.expected:
            return
        page = message.page.url if message.page is not None else "?"
        self.problems.append(f"console error on {page}: {message.text} (from {url or '?'})")

    def _uncaught(self, error: WebError) -> None:
        page = error.page.url if error.page is not None else "?"
        self.problems.append(f"uncaught exception on {page}: {error.error}")

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme in LOCAL_SCHEMES:
            return
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.problems.append(f"request to another host: {request.url}")

    def _response(self, response: Response) -> None:
        if response.status >= 500:
            self.problems.append(f"server error {response.status} for {response.url}")

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


class Shots:
    """Full-page screenshots of one test, numbered in the order they are taken."""

    def __init__(self, folder: Path, test: str) -> None:
        self.folder = folder
        self.test = re.sub(r"[^A-Za-z0-9_.-]+", "-", test).strip("-")
        self.taken = 0
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, page: Page, name: str) -> Path:
        self.taken += 1
        path = self.folder / f"{self.test}-{self.taken:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        return path


# --------------------------------------------------------------------------- page readers

PLOT_SUMMARY_JS = """
el => {
  const drawn = node => { const box = node.getBBox(); return box.width > 0 || box.height > 0; };
  const source = image => image.getAttribute('href') || image.getAttribute('xlink:href') || '';
  const images = [...el.querySelectorAll('g.hm image')].filter(image =>
    source(image).startsWith('data:image'));
  return {
    svg: el.querySelectorAll('svg.main-svg').length,
    canvas: el.querySelectorAll('canvas').length,
    traces: el.querySelectorAll('g.trace').length + el.querySelectorAll('g.hm').length,
    points: el.querySelectorAll('g.trace path.point').length,
    lines: [...el.querySelectorAll('g.trace path.js-line')].filter(drawn).length,
    bars: [...el.querySelectorAll('g.trace.bars g.point path')].filter(drawn).length,
    boxes: [...el.querySelectorAll('g.trace.boxes path.box')].filter(drawn).length,
    heatmaps: images.length,
    marks: [...el.querySelectorAll('g.trace path')].filter(drawn).length + images.length,
  };
}
"""

# True once every ``div.plot`` of the page holds a Plotly SVG with a trace in it.
PLOTS_RENDERED_JS = """
() => {
  const plots = [...document.querySelectorAll('div.plot[data-plot]')];
  return plots.length > 0 && plots.every(el =>
    el.querySelector('svg.main-svg') && el.querySelector('g.trace, g.hm'));
}
"""

# Records, in sessionStorage (it survives the navigation the upload ends with), every
# state a progress bar of the page is seen in: visible or not, its value and maximum.
OBSERVE_PROGRESS_JS = """
() => {
  const seen = [];
  const record = () => {
    for (const el of document.querySelectorAll('progress, [role=progressbar]')) {
      const style = getComputedStyle(el);
      const visible = el.getClientRects().length > 0 && style.visibility !== 'hidden';
      const isProgress = el.tagName === 'PROGRESS';
      const value = isProgress ? (el.hasAttribute('value') ? el.value : null)
                               : el.getAttribute('aria-valuenow');
      const max = isProgress ? el.max : (el.getAttribute('aria-valuemax') || 100);
      const entry = {visible, value: value === null ? null : Number(value), max: Number(max)};
      const last = seen[seen.length - 1];
      if (!last || JSON.stringify(last) !== JSON.stringify(entry)) seen.push(entry);
    }
    sessionStorage.setItem('mlserve-test-progress', JSON.stringify(seen));
  };
  new MutationObserver(record).observe(document.documentElement,
    {subtree: true, childList: true, attributes: true, characterData: true});
  record();
}
"""

READ_PROGRESS_JS = "() => JSON.parse(sessionStorage.getItem('mlserve-test-progress') || '[]')"

# The job page as a poll sees it: status, the bar's value and where it and the status are.
JOB_STATE_JS = """
() => {
  const bar = document.querySelector('[role=progressbar], progress');
  const status = document.querySelector('[data-testid="job-status"]');
  const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
    return [r.x + scrollX, r.y + scrollY, r.width, r.height]; };
  const now = bar && (bar.getAttribute('aria-valuenow') ?? (bar.value * 100 / bar.max));
  return {at_ms: performance.now(), status: status ? status.textContent.trim() : null,
          value: now === null || now === undefined ? null : Number(now),
          bar: box(bar), status_box: box(status)};
}
"""

# Layout shifts since the page loaded (Layout Instability API), input-driven ones excluded:
# when (ms since navigation, as performance.now()) and how much (the CLS score of each).
LAYOUT_SHIFT_INIT_JS = """
window.__layoutShifts = [];
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    if (!entry.hadRecentInput) window.__layoutShifts.push([entry.startTime, entry.value]);
  }
}).observe({type: 'layout-shift', buffered: true});
"""

FOCUS_JS = """
el => {
  const style = getComputedStyle(el);
  return {
    focused: el === document.activeElement,
    focus_visible: el.matches(':focus-visible'),
    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
    shadow: style.boxShadow !== 'none',
  };
}
"""


# Form controls a user cannot tell apart: no <label>, no aria-label(ledby).
UNLABELLED_JS = """
() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => !['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type))
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 160))
"""


def unlabelled_inputs(page: Page) -> list[str]:
    """The form controls of ``page`` without a label (their HTML, shortened)."""
    found: list[str] = page.evaluate(UNLABELLED_JS)
    return found


def plot_summary(plot: Locator) -> dict[str, int]:
    """Counts of what Plotly drew into one ``div.plot``: SVGs, traces, marks with an area.

    ``points`` are scatter markers (``path.point``), ``bars`` drawn bars, ``heatmaps``
    heatmap images with data, ``marks`` every drawn path of a trace plus those images.
    """
    summary: dict[str, int] = plot.evaluate(PLOT_SUMMARY_JS)
    return summary


def wait_for_plots(page: Page, timeout_ms: float = 30_000) -> list[str]:
    """Wait until every ``div.plot`` of ``page`` is rendered; return their kinds in order."""
    page.wait_for_function(PLOTS_RENDERED_JS, timeout=timeout_ms)
    kinds: list[str] = page.locator("div.plot[data-plot]").evaluate_all(
        "els => els.map(el => el.dataset.plot)"
    )
    return kinds


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
    overflow: int = page.evaluate(
        "() => Math.max(0, document.scrollingElement.scrollWidth - window.innerWidth)"
    )
    return overflow


def tab_to(page: Page, target: Locator, limit: int = 80) -> dict[str, bool]:
    """Press Tab until ``target`` has the focus; return how its focus shows.

    Raises
    ------
    AssertionError
        When ``limit`` presses of Tab never focus ``target``.
    """
    page.locator("body").focus()
    for _ in range(limit):
        page.keyboard.press("Tab")
        state: dict[str, bool] = target.evaluate(FOCUS_JS)
        if state["focused"]:
            return state
    raise AssertionError(f"{limit} presses of Tab never reached {target}")


def session_cookie_text(value: str) -> str:
    """What a Flask (itsdangerous) session cookie holds, readable; else the value itself."""
    signed = re.fullmatch(r"(\.?)([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", value)
    if signed is None:
        return value
    payload = base64.urlsafe_b64decode(signed.group(2) + "=" * (-len(signed.group(2)) % 4))
    return (zlib.decompress(payload) if signed.group(1) else payload).decode(errors="replace")
