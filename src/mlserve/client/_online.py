"""Client methods for online learning, feedback, live metrics and drift (a mixin of Client)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

JSON = dict[str, Any]


class OnlineMethods:
    """``Client`` methods of docs/online-learning.md; each returns the server's JSON body.

    Notes
    -----
    Every method raises ``ApiError`` for a non-2xx answer (404 unknown model, version
    or prediction; 409; 422 invalid input) and ``ConnectionFailed`` when the server
    cannot be reached.
    """

    if TYPE_CHECKING:  # Client defines it: one request, errors mapped to ApiError

        def _request(self, method: str, path: str, **kwargs: Any) -> JSON: ...

    def post_samples(
        self, name: str, instances: Sequence[Mapping[str, Any]], targets: Sequence[Any]
    ) -> JSON:
        """Store labelled samples (``POST /api/v1/models/{name}/samples``).

        Parameters
        ----------
        instances : sequence of dict, length n_samples
            One mapping of feature name to value per sample.
        targets : sequence, length n_samples
            The true target of each instance.

        Returns
        -------
        dict
            ``received``, ``first_sample_id``, ``last_sample_id``, ``pending``,
            ``live_version``, ``update_queued``.
        """
        body = {"instances": list(instances), "targets": list(targets)}
        return self._request("POST", f"/api/v1/models/{quote(name, safe='')}/samples", json=body)

    def online_state(self, name: str) -> JSON:
        """Head version, cursor, waiting samples and the prequential error of the stream
        (``GET /api/v1/models/{name}/online``)."""
        return self._request("GET", f"/api/v1/models/{quote(name, safe='')}/online")

    def online_update(self, name: str) -> JSON:
        """Queue an online update now (``POST .../online-update``; 409 if not incremental)."""
        return self._request("POST", f"/api/v1/models/{quote(name, safe='')}/online-update")

    def retrain(self, name: str) -> JSON:
        """Train a new version on the dataset plus the stored samples; returns the job."""
        return self._request("POST", f"/api/v1/models/{quote(name, safe='')}/retrain")

    def feedback(self, prediction_id: str, targets: Sequence[Any]) -> JSON:
        """Attach the true values, one per predicted row, to a logged prediction."""
        path = f"/api/v1/predictions/{quote(prediction_id, safe='')}/feedback"
        return self._request("POST", path, json={"targets": list(targets)})

    def live_metrics(self, name: str, version: int, window: int | None = None) -> JSON:
        """Metrics of a version on its most recent ``window`` rows with feedback."""
        params = {"window": window} if window is not None else {}
        path = f"/api/v1/models/{quote(name, safe='')}/versions/{int(version)}/live-metrics"
        return self._request("GET", path, params=params)

    def drift(
        self, name: str, version: int, window: int | None = None, source: str = "predictions"
    ) -> JSON:
        """PSI and KS per feature of the most recent ``window`` inputs (``predictions`` or
        ``samples``) against the version's training reference."""
        params: dict[str, Any] = {"source": source}
        if window is not None:
            params["window"] = window
        path = f"/api/v1/models/{quote(name, safe='')}/versions/{int(version)}/drift"
        return self._request("GET", path, params=params)
