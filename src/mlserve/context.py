"""The services' shared dependencies for one process, as one plain record.

A :class:`Context` is built once per process by the composition root
(:func:`mlserve.bootstrap.build_context`) for the web service, a job worker and
the command line; services receive it as their first argument and never reach for
Flask's ``current_app`` or ``request``.

This module sits at the bottom of the import graph, above only ``store``,
``settings`` and ``errors``. The per-process components it holds (the version
resolver, the model cache, the key cache, the rate limiter, the prediction log)
live in their domains (``serving``, ``security``, ``monitoring``), which import this
module; so their fields are typed here by :class:`typing.Protocol` s naming just
what the services call (the ports-and-adapters pattern), and mypy checks at the
composition root that each component satisfies its protocol.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mlserve.settings import Settings
from mlserve.store.artifacts import ArtifactStore
from mlserve.store.database import Database
from mlserve.store.documents import TensorSpec
from mlserve.store.orm import ApiKey, ModelVersion
from mlserve.store.queue import JobQueue

Columns = dict[str, np.ndarray]
"""Validated model input: feature name -> array of shape (n_rows,)."""
Outputs = tuple[np.ndarray, "np.ndarray | None"]
"""Predictions of shape (n_rows,) and probabilities of shape (n_rows, n_classes) or None."""


class RowValidator(Protocol):
    """Checks request rows against a version's signature (:mod:`mlserve.serving.validation`)."""

    def columns(
        self, instances: Any, extra: str = "refuse", *, json_values: bool = False
    ) -> Columns:
        """Validated columns of ``instances`` (one ``{feature: value}`` or one list of
        values in signature order per row; keys not features: ``extra``; ``json_values``:
        every value is of a JSON type)."""
        ...

    def columns_from_inputs(
        self, inputs: Any, extra: str = "refuse", *, json_values: bool = False
    ) -> Columns:
        """Validated columns of columnar ``inputs`` (``{feature: [value per row]}``)."""
        ...

    def rows_from_lists(self, instances: list[Any]) -> list[Any]:
        """Rows given as lists of values in signature order, as ``{feature: value}``."""
        ...

    def columns_from_arrays(self, arrays: dict[str, np.ndarray]) -> Columns | None:
        """Validated columns from decoded tensors, or ``None`` to check them as lists."""
        ...

    def warnings(self, columns: Columns) -> list[dict[str, Any]]:
        """Per row: nulls imputed and text values unseen in training."""
        ...


class TensorRunner(Protocol):
    """An imported graph run tensor to tensor (:class:`mlserve.serving.imported.TensorModel`)."""

    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def run(self, feed: dict[str, np.ndarray], names: list[str] | None = None) -> dict[str, Any]:
        """Output name -> array for the wanted outputs (default all)."""
        ...


class ServableVersion(Protocol):
    """A loaded model version ready to predict (:class:`mlserve.serving.loader.LoadedModel`)."""

    model_name: str
    version: int
    classes: list[Any] | None

    @property
    def tensor(self) -> TensorRunner | None:
        """The graph of an imported ONNX version (V2 tensor inference), else None."""
        ...

    @property
    def validator(self) -> RowValidator:
        """The version's row validator."""
        ...

    def predict(self, columns: Columns, n_rows: int) -> Outputs:
        """Predictions (and probabilities) of validated ``columns`` of ``n_rows`` rows."""
        ...


class ModelCache(Protocol):
    """Loaded versions of this process (:class:`mlserve.serving.loader.ModelCache`)."""

    def get(self, row: ModelVersion) -> ServableVersion:
        """The loaded version of ``row``, loading it (sha256-checked) on first use."""
        ...


class TrafficRoute(Protocol):
    """Who may answer a request (:class:`mlserve.registry.traffic.Route`)."""

    @property
    def primary(self) -> ModelVersion:
        """The version the alias points at."""
        ...

    @property
    def shadows(self) -> tuple[ModelVersion, ...]:
        """Versions that get a copy of every request."""
        ...

    @property
    def alias(self) -> str | None:
        """The alias of the route (``None``: a version was named)."""
        ...

    @property
    def versions(self) -> list[ModelVersion]:
        """Every version of the route: primary, candidates, shadows."""
        ...

    def choose(self, routing_key: str | None = None) -> ModelVersion:
        """The version that answers a request (sticky by ``routing_key``, else random)."""
        ...


class VersionResolver(Protocol):
    """Cached name/alias/version lookups (:class:`mlserve.serving.resolver.Resolver`)."""

    def resolve(
        self, name: str, alias: str | None = None, version: int | None = None
    ) -> ModelVersion:
        """The version row a request means."""
        ...

    def route(
        self, name: str, alias: str | None = None, version: int | None = None
    ) -> TrafficRoute:
        """The primary version and the traffic policy of a request."""
        ...

    def invalidate(self, name: str | None = None) -> None:
        """Forget the cached lookups of model ``name``, every one when ``None`` (after a
        registry change made by this process)."""
        ...


class KeyCache(Protocol):
    """Verified API keys of this process (:class:`mlserve.security.keys.KeyCache`)."""

    def verify(self, key: str | None) -> ApiKey:
        """The row of ``key`` once checked in force."""
        ...

    def authenticate(self, key: str | None) -> Any:
        """The :class:`mlserve.security.keys.Principal` holding ``key``, once checked in
        force (kept with the row: no object built per request)."""
        ...

    def verify_session(self, prefix: str, key_id: str, generation: int = 0) -> ApiKey:
        """The row of the key a web session signed in with, once checked in force
        and at the session ``generation`` the cookie recorded."""
        ...

    def end_sessions(self, prefix: str) -> None:
        """End every web session of key ``prefix`` (raise its session generation)."""
        ...

    def forget(self, prefix: str) -> None:
        """Drop ``prefix`` so that its row is read again on next use."""
        ...


class RateLimiter(Protocol):
    """Request counters (:class:`mlserve.security.ratelimit.RateLimiter`)."""

    def check(self, key_prefix: str | None, remote_addr: str | None) -> None:
        """Count a request of a key (or anonymous) from an address."""
        ...

    def check_auth_failure(self, remote_addr: str | None) -> None:
        """Count a failed authentication from an address."""
        ...

    def refuse_blocked(self, remote_addr: str | None) -> None:
        """Refuse an address that failed authentication too often."""
        ...


class PredictionLog(Protocol):
    """Sampled asynchronous prediction logging (:mod:`mlserve.monitoring.prediction_log`)."""

    written: int
    dropped: int
    failed: int

    def submit(
        self,
        prediction_id: str,
        model_name: str,
        version: int,
        *,
        instances: Any,
        inputs: Any,
        predictions: np.ndarray,
        shadow_of: str | None = None,
    ) -> bool:
        """Queue one answered request for logging if sampled; return whether it was
        (``shadow_of``: a shadow answer to that logged live request, always queued)."""
        ...

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until what is queued is written; return whether it was within ``timeout_s``."""
        ...


class TrafficCounters(Protocol):
    """Per-version request counters (:class:`mlserve.serving.traffic_stats.TrafficStats`)."""

    def record(
        self, model: str, version: int, *, role: Any, seconds: float, ok: bool = True
    ) -> None:
        """Count one request answered or failed by ``version``."""
        ...

    def snapshot(self, model: str | None = None) -> list[dict[str, Any]]:
        """Counters per (model, version, role)."""
        ...


class ShadowQueue(Protocol):
    """Shadow requests off the request path (:class:`mlserve.serving.shadow.ShadowRunner`)."""

    answered: int
    failed: int
    dropped: int

    def submit(
        self,
        shadows: tuple[ModelVersion, ...],
        *,
        instances: Any,
        inputs: Any,
        logged_as: str | None,
    ) -> None:
        """Queue one job per shadow version; never blocks."""
        ...

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued job is done."""
        ...


class ExplainerStore(Protocol):
    """Explainers built by this process (:class:`mlserve.serving.explain.ExplainerCache`)."""

    def get(self, key: tuple[str, int, str]) -> Any:
        """The entry of (model, version, sha256), or ``None``."""
        ...

    def put(self, key: tuple[str, int, str], entry: Any) -> None:
        """Keep an entry."""
        ...


class ModelPreload(Protocol):
    """Versions loaded as a worker starts (:class:`mlserve.serving.preload.Preloader`)."""

    def status(self) -> str:
        """``"ok"`` once done, else how far loading got."""
        ...


@dataclass(kw_only=True)
class Context:
    """Dependencies of the services for one process.

    Attributes
    ----------
    settings : Settings
    db : Database
    store : ArtifactStore
        Dataset files and model artifacts.
    queue : JobQueue
        The job queue (training jobs, online updates).
    secret_key : bytes
        Server secret keying stored API key HMACs and session cookies.
    resolver : VersionResolver
        Cached name/alias/version lookups of this process.
    models : ModelCache
        Loaded model versions of this process.
    keys : KeyCache
        API keys checked by this process.
    limiter : RateLimiter
        Request counters (per key, per address, failed authentications).
    prediction_log : PredictionLog
        Sampled, asynchronous prediction logging.
    traffic : TrafficCounters
        Requests, errors and latencies per version and role (live, shadow).
    shadows : ShadowQueue
        Shadow requests of the aliases' traffic policies, off the request path.
    explainers : ExplainerStore
        SHAP explainers of the versions explained by this process.
    prediction_warnings : Counter
        ``(model name, warning) -> count`` of prediction warnings in this process
        (``mlserve_prediction_warnings_total``).
    preload : ModelPreload or None
        Set in HTTP workers that load the ``preload_alias`` versions as they start.
    """

    settings: Settings
    db: Database
    store: ArtifactStore
    queue: JobQueue
    secret_key: bytes = field(repr=False)
    resolver: VersionResolver
    models: ModelCache
    keys: KeyCache
    limiter: RateLimiter
    prediction_log: PredictionLog
    traffic: TrafficCounters
    shadows: ShadowQueue
    explainers: ExplainerStore
    prediction_warnings: Counter[tuple[str, str]] = field(default_factory=Counter)
    preload: ModelPreload | None = None
