"""Client methods registering model files trained anywhere (a mixin of Client)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlserve.client._convert import convert

JSON = dict[str, Any]


class ModelMethods:
    """``Client.register_model`` (docs/import.md)."""

    if TYPE_CHECKING:  # Client defines it: one request, errors mapped to ApiError

        def _request(self, method: str, path: str, **kwargs: Any) -> JSON: ...

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        sample_input: Any,
        metadata: Mapping[str, Any] | None = None,
        onnx: bool = False,
    ) -> JSON:
        """Convert ``model`` here and register it as the next version of ``name``.

        ``POST /api/v1/models/{name}/versions``; the server checks the file, runs the
        sample and answers the new version (``source: "imported"``).

        Parameters
        ----------
        name : str
            Registered model name (created if new).
        model : object
            A ``torch.nn.Module`` (exported with ``torch.onnx.export``, dynamic batch
            axis, input ``input``, output ``output``); a Keras 3 model (its ONNX
            export); a scikit-learn estimator or pipeline (skops, or skl2onnx with
            ``onnx=True``); a LightGBM or XGBoost model (onnxmltools); or the path
            of an ``.onnx`` / ``.skops`` file.
        sample_input : array-like, DataFrame or tensor
            A few inputs: traces the network and is sent as the sample (first rows).
        metadata : dict, optional
            Merged over what the conversion states (task, feature_names, classes...).
        onnx : bool
            scikit-learn only: send ONNX (skl2onnx) instead of skops.

        Returns
        -------
        dict
            The new version.

        Raises
        ------
        ImportError
            The converter of the model's framework is missing (names the extra).
        ApiError
            422 with the reason when the server refuses the file.
        """
        converted = convert(model, sample_input, onnx=onnx)
        fields = {"metadata": json.dumps({**converted.metadata, **(metadata or {})})}
        if converted.sample is not None:
            fields["sample"] = json.dumps(converted.sample)
        return self._request(
            "POST",
            f"/api/v1/models/{quote(name, safe='')}/versions",
            files={"file": (converted.filename, converted.data, "application/octet-stream")},
            data=fields,
        )
