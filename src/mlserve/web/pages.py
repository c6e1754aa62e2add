"""The pages. Each checks that what its URL names exists (else a 404 page) and renders
its template; the page's script fetches the rest from the REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import render_template, request

from mlserve.api.current import current_context
from mlserve.api.security import requires
from mlserve.context import Context
from mlserve.lazy import lazy_module
from mlserve.web.blueprint import bp

if TYPE_CHECKING:
    from mlserve.datasets import service as datasets
    from mlserve.jobs import service as jobs
    from mlserve.monitoring import live as monitoring
    from mlserve.registry import service as registry
else:
    datasets = lazy_module("mlserve.datasets.service")
    jobs = lazy_module("mlserve.jobs.service")
    monitoring = lazy_module("mlserve.monitoring.live")
    registry = lazy_module("mlserve.registry.service")


def _ctx() -> Context:
    ctx: Context = current_context()
    return ctx


@bp.get("/")
@requires("read")
def home() -> str:
    """Counts, recent jobs with live status, models in production, service health."""
    return render_template("home.html")


@bp.get("/datasets", endpoint="datasets")
@requires("read")
def datasets_page() -> str:
    """Upload (drag and drop, progress bar) and the list of datasets."""
    return render_template("datasets.html")


@bp.get("/datasets/<dataset_id>")
@requires("read")
def dataset(dataset_id: str) -> str:
    """Schema, per-column distributions and the first rows of a dataset."""
    return render_template("dataset.html", dataset=datasets.get_dataset(_ctx(), dataset_id))


@bp.get("/train")
@requires("read")
def train() -> str:
    """The training form, for the dataset named by ``?dataset=``."""
    return render_template("train.html", dataset_id=request.args.get("dataset", ""))


@bp.get("/jobs/<job_id>")
@requires("read")
def job(job_id: str) -> str:
    """A training job's live progress."""
    return render_template("job.html", job=jobs.get_job(_ctx(), job_id))


@bp.get("/models")
@requires("read")
def models() -> str:
    """Every model with its latest version, aliases and key metric."""
    return render_template("models.html")


@bp.get("/models/<name>")
@requires("read")
def model(name: str) -> str:
    """A model's versions (sortable) and the form comparing two of them."""
    return render_template("model.html", model=registry.get_model(_ctx(), name))


@bp.get("/models/<name>/compare")
@requires("read")
def compare(name: str) -> str:
    """Two versions side by side: ``?a=1&b=2``."""
    return render_template(
        "compare.html",
        model=registry.get_model(_ctx(), name),
        a=request.args.get("a", type=int),
        b=request.args.get("b", type=int),
    )


@bp.get("/models/<name>/aliases/<alias>/traffic")
@requires("read")
def traffic(name: str, alias: str) -> str:
    """The versions of an alias's traffic policy compared: requests, errors, latency,
    agreement with the primary, live metrics (docs/traffic.md)."""
    row = registry.get_alias(_ctx(), name, alias)
    return render_template("traffic.html", name=row.model_name, alias=row.alias)


@bp.get("/models/<name>/versions/<int:version>")
@requires("read")
def version(name: str, version: int) -> str:
    """A version's metrics, lineage (with an online update's guard), live metrics, drift,
    plots, cross-validation, signature, parameters and aliases."""
    row = registry.get_version(_ctx(), name, version)
    default = _ctx().settings.live_metrics_window
    return render_template(
        "version.html",
        name=row.model_name,
        version=row.version,
        window_default=default,
        windows=sorted({100, 1_000, 10_000, monitoring.MAX_WINDOW, default}),
    )


@bp.get("/predict")
@requires("read")
def predict_picker() -> str:
    """Choose the model to predict with."""
    return render_template("predict_picker.html")


@bp.get("/models/<name>/predict")
@requires("read")
def predict(name: str) -> str:
    """A form built from the signature, and batch prediction of a CSV file."""
    return render_template(
        "predict.html",
        model=registry.get_model(_ctx(), name),
        version=request.args.get("version", type=int),
        alias=request.args.get("alias", ""),
    )


@bp.get("/api-access")
@requires("read")
def api_access() -> str:
    """The Swagger UI link, and curl and Python snippets for each model."""
    return render_template("api_access.html")
