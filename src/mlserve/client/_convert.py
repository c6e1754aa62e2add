"""Turning an in-memory model into an ``.onnx`` or ``.skops`` file on the client side.

Each framework is imported only when a model of it is converted; a missing converter
raises ``ImportError`` naming the extra that installs it (``pip install 'mlserve[torch]'``).
Nothing here talks to the server (:meth:`mlserve.client.Client.register_model` uploads).
"""

from __future__ import annotations

import importlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_ROWS = 5


@dataclass(kw_only=True)
class ModelFile:
    """A converted model: file name and bytes, metadata and sample to send with it."""

    filename: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    sample: Any = None


def _need(module: str, extra: str | None) -> Any:
    """Import ``module`` or raise ImportError naming the extra that installs it
    (``None``: a core dependency of mlserve)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        target = f"'mlserve[{extra}]'" if extra else "mlserve"
        raise ImportError(f"converting this model needs {module}: pip install {target}") from exc


def convert(model: Any, sample_input: Any, *, onnx: bool = False) -> ModelFile:
    """Convert ``model`` for upload.

    Parameters
    ----------
    model : torch.nn.Module, keras.Model, scikit-learn estimator, LightGBM or XGBoost
        model, or a path (str or Path) to an ``.onnx`` / ``.skops`` file.
    sample_input : array-like, DataFrame or tensor
        A few inputs: traces the network (torch, Keras), names the columns and is sent
        as the ``sample`` the server runs before registering (its first rows).
    onnx : bool
        scikit-learn only: convert with skl2onnx (one graph input per column)
        instead of saving with skops.

    Raises
    ------
    ImportError
        The converter of the model's framework is not installed (names the extra).
    TypeError
        A model of no supported kind.
    """
    if isinstance(model, str | Path):
        path = Path(model)
        return ModelFile(filename=path.name, data=path.read_bytes(), sample=_sample(sample_input))
    module = type(model).__module__.split(".")[0]
    if module in ("keras", "tf_keras"):  # before torch: a torch-backend Keras model is a Module
        return _keras(model, sample_input)
    if module == "torch" or _is_torch_module(model):
        return _torch(model, sample_input)
    if module in ("lightgbm", "xgboost"):
        return _boosting(model, sample_input, module)
    if hasattr(model, "fit") and hasattr(model, "predict"):
        return _sklearn_onnx(model, sample_input) if onnx else _sklearn(model, sample_input)
    raise TypeError(f"cannot register a {type(model).__name__}: see docs/import.md")


def _is_torch_module(model: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") for c in type(model).__mro__)


def _sample(sample_input: Any) -> Any:
    """The first rows as JSON-ready values (records for a DataFrame)."""
    if sample_input is None:
        return None
    if hasattr(sample_input, "to_dict"):
        return json.loads(sample_input.head(SAMPLE_ROWS).to_json(orient="records"))
    if hasattr(sample_input, "detach"):
        sample_input = sample_input.detach().cpu().numpy()
    if hasattr(sample_input, "tolist"):
        return sample_input[:SAMPLE_ROWS].tolist()
    return sample_input


def _torch(model: Any, sample_input: Any) -> ModelFile:
    torch = _need("torch", "torch")
    example = torch.as_tensor(sample_input)
    buffer = io.BytesIO()
    model.eval()
    torch.onnx.export(
        model,
        (example,),
        buffer,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript
    )
    return ModelFile(
        filename="model.onnx",
        data=buffer.getvalue(),
        metadata={"framework": "pytorch"},
        sample={"input": _sample(example)},
    )


def _keras(model: Any, sample_input: Any) -> ModelFile:
    _need("keras", "keras")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        model.export(str(path), format="onnx")
        data = path.read_bytes()
    return ModelFile(filename="model.onnx", data=data, metadata={"framework": "keras"})


def _boosting(model: Any, sample_input: Any, module: str) -> ModelFile:
    tools = _need("onnxmltools", "gbm")
    types = _need("onnxmltools.convert.common.data_types", "gbm")
    width = int(sample_input.shape[1])
    initial = [("input", types.FloatTensorType([None, width]))]
    convert = tools.convert_lightgbm if module == "lightgbm" else tools.convert_xgboost
    options: dict[str, Any] = {"zipmap": False} if module == "lightgbm" else {}
    onx = convert(model, initial_types=initial, target_opset=15, **options)
    names = [str(c) for c in getattr(sample_input, "columns", [f"x{i}" for i in range(width)])]
    task = "classification" if hasattr(model, "classes_") else "regression"
    return ModelFile(
        filename="model.onnx",
        data=onx.SerializeToString(),
        metadata={"framework": module, "feature_names": names, "task": task},
        sample=_sample(sample_input),
    )


def _sklearn(model: Any, sample_input: Any) -> ModelFile:
    sio = _need("skops.io", None)
    return ModelFile(filename="model.skops", data=sio.dumps(model), sample=_sample(sample_input))


def _sklearn_onnx(model: Any, sample_input: Any) -> ModelFile:
    skl2onnx = _need("skl2onnx", None)
    classifier = hasattr(model, "classes_")
    options = {"zipmap": False} if classifier else None
    onx = skl2onnx.to_onnx(model, sample_input[:1], options=options)
    task = "classification" if classifier else "regression"
    return ModelFile(
        filename="model.onnx",
        data=onx.SerializeToString(),
        metadata={"framework": "scikit-learn", "task": task},
        sample=_sample(sample_input),
    )
