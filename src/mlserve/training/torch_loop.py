"""The PyTorch side of the ``torch_mlp`` estimators: network, optimiser, one epoch, threads.

Every function imports torch itself, so that importing this module (and
:mod:`mlserve.training.torch_mlp`, whose classes skops rebuilds when a serving process
loads a version) never imports torch: only fitting and ``partial_fit`` need it.
Prediction runs the stored weights in numpy (:mod:`mlserve.training.torch_mlp`).

Design and measurements: docs/torch.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

BN_EPS = 1e-5  # torch.nn.BatchNorm1d's default, folded into the weights for prediction
EVAL_ROWS = 8192  # rows per forward pass when measuring a loss without gradients
ACTIVATION_MODULES = {"relu": "ReLU", "tanh": "Tanh", "logistic": "Sigmoid", "silu": "SiLU"}
INSTALL_HINT = "pip install 'mlserve[torch]'"
ONE_FIT_AT_ONCE = threading.RLock()  # torch's thread count and RNG are per process


def import_torch() -> Any:
    """``import torch``, or an ImportError that says how to install it.

    Raises
    ------
    ImportError
        When PyTorch is not installed (the ``torch`` extra of mlserve).
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - the suite runs with the extra
        raise ImportError(f"torch_mlp needs PyTorch: {INSTALL_HINT}") from exc
    return torch


def resolve_device(device: str) -> str:
    """``"auto"``: ``"cuda"`` when ``torch.cuda.is_available()``, else ``"cpu"``; else ``device``.

    Raises
    ------
    ValueError
        ``"cuda"`` asked on a machine where torch sees no GPU.
    """
    torch = import_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked but torch sees no CUDA device")
    return device


@contextmanager
def one_thread() -> Iterator[int]:
    """Run torch's CPU kernels on one thread inside the block; yields the thread count.

    One thread is what makes a fit deterministic for a seed (BatchNorm's CPU reductions
    depend on the thread count) and it is also the fastest for networks this small:
    on 2 shared cores 2 threads were 3 to 9 times slower, and on 16 cores 16 threads
    took 618 ms per california epoch against 256 ms with one (docs/torch.md).
    ``threadpoolctl`` caps the OpenMP pools torch loaded; ``torch.set_num_threads``
    covers its own intra-op pool. Both are restored on exit.

    The thread count and the random generator (``torch.random.fork_rng`` inside the
    block) are global to the process: one block runs at a time per process
    (:data:`ONE_FIT_AT_ONCE`), so a worker running several jobs at once
    (``jobs_concurrency``) keeps every fit deterministic; other jobs run on meanwhile.
    """
    torch = import_torch()
    with ONE_FIT_AT_ONCE, threadpool_limits(limits=1):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield int(torch.get_num_threads())
        finally:
            torch.set_num_threads(before)


def build_module(
    n_in: int,
    n_out: int,
    hidden: tuple[int, ...],
    *,
    activation: str,
    dropout: float,
    batch_norm: bool,
) -> Any:
    """``[Linear -> (BatchNorm1d) -> activation -> (Dropout)] * len(hidden) -> Linear``.

    Parameters
    ----------
    n_in, n_out : int
        Input features and outputs (1 for regression, the number of classes else).
    hidden : tuple of int
        Width of each hidden layer.
    activation : {"relu", "tanh", "logistic", "silu"}
    dropout : float
        Drop probability after each hidden activation (0: no Dropout module).
    batch_norm : bool
        A BatchNorm1d after each hidden Linear (Ioffe and Szegedy 2015).
    """
    nn = import_torch().nn
    layers: list[Any] = []
    width = n_in
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size, eps=BN_EPS))
        layers.append(getattr(nn, ACTIVATION_MODULES[activation])())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def make_optimizer(name: str, parameters: Any, learning_rate: float, weight_decay: float) -> Any:
    """``adamw`` (decoupled weight decay, Loshchilov and Hutter 2019), ``adam`` (L2 in the
    gradient) or ``sgd`` (momentum 0.9, Nesterov)."""
    optim = import_torch().optim
    if name == "sgd":
        return optim.SGD(
            parameters, lr=learning_rate, momentum=0.9, nesterov=True, weight_decay=weight_decay
        )
    cls = optim.Adam if name == "adam" else optim.AdamW
    return cls(parameters, lr=learning_rate, weight_decay=weight_decay)


def make_scheduler(name: str, optimizer: Any, *, patience: int | None, max_epochs: int) -> Any:
    """``plateau``: halve the rate after ``max(1, patience // 4)`` epochs without a better
    validation loss; ``cosine``: cosine annealing over ``max_epochs``; ``constant``: None."""
    schedulers = import_torch().optim.lr_scheduler
    if name == "plateau":
        return schedulers.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, (patience or 20) // 4)
        )
    if name == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=max_epochs)
    return None


def step_scheduler(scheduler: Any, watched: float) -> None:
    """Advance ``scheduler`` after an epoch (``watched``: the loss a plateau follows)."""
    if scheduler is None:
        return
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        scheduler.step(watched)
    else:
        scheduler.step()


def run_epoch(
    module: Any,
    optimizer: Any,
    criterion: Any,
    data: tuple[Any, Any],
    *,
    batch_size: int,
    generator: Any,
    skip_single: bool,
    frozen_statistics: bool = False,
) -> float:
    """One shuffled pass over ``data`` (tensors on the module's device); mean training loss.

    The order comes from ``generator`` (a CPU ``torch.Generator``, so the order is the
    same on every device); the loss is summed on the device and read once per epoch.
    A last batch of one row is skipped when ``skip_single`` (BatchNorm cannot train on it).
    """
    torch = import_torch()
    x, y = data
    module.train()
    if frozen_statistics:  # BatchNorm normalises with the statistics of the first fit
        for layer in module.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                layer.eval()
    order = torch.randperm(len(x), generator=generator).to(x.device)
    total = torch.zeros((), device=x.device)
    for start in range(0, len(x), batch_size):
        rows = order[start : start + batch_size]
        if skip_single and len(rows) == 1:
            continue
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(module(x[rows]), y[rows])
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(rows)
    return float(total) / len(x)


def eval_loss(module: Any, criterion: Any, data: tuple[Any, Any]) -> float:
    """Mean loss of ``module`` in eval mode (BatchNorm running statistics, no dropout)."""
    torch = import_torch()
    x, y = data
    module.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(x), EVAL_ROWS):
            xb, yb = x[start : start + EVAL_ROWS], y[start : start + EVAL_ROWS]
            total += float(criterion(module(xb), yb)) * len(xb)
    return total / len(x)


def state_to_numpy(module: Any) -> dict[str, np.ndarray]:
    """The module's ``state_dict`` as float32 numpy arrays on the CPU (in its order)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def optimizer_to_numpy(optimizer: Any) -> dict[str, Any]:
    """The optimiser's state as numpy arrays and plain Python (skops stores it, no pickle)."""
    saved = optimizer.state_dict()
    n_params = len(saved["param_groups"][0]["params"])
    return {
        "state": [
            {k: v.detach().cpu().numpy().copy() for k, v in saved["state"].get(i, {}).items()}
            for i in range(n_params)
        ],
        "param_groups": [
            {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
            for group in saved["param_groups"]
        ],
    }


def optimizer_from_numpy(optimizer: Any, saved: dict[str, Any]) -> None:
    """Restore what :func:`optimizer_to_numpy` kept into a fresh ``optimizer`` (moments,
    step counts, learning rate as training left it)."""
    torch = import_torch()
    # load_state_dict moves each value to its parameter's device and dtype ("step" stays
    # a CPU scalar, as torch keeps it).
    state = {
        i: {k: torch.tensor(np.asarray(v)) for k, v in s.items()}
        for i, s in enumerate(saved["state"])
        if s
    }
    groups = []
    for group in saved["param_groups"]:
        restored = dict(group, params=list(group["params"]))
        if "betas" in restored:
            restored["betas"] = tuple(restored["betas"])
        groups.append(restored)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
