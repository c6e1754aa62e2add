"""shap's numba kernels are cached on disk under the server's home: a second process
loads them instead of compiling them again (:mod:`mlserve.training.shap_jit`)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlserve.training import shap_jit

# One permutation explanation of a small tree model, then the cache statistics of every
# numba kernel shap defines, as JSON: {"hits": n, "misses": n}.
EXPLAIN_ONCE = """
import json, sys
from pathlib import Path
from mlserve.training import shap_jit
shap_jit.set_cache_dir(Path(sys.argv[1]))
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor
from numba.core.dispatcher import Dispatcher
X, y = load_diabetes(return_X_y=True)
model = HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(X, y)
shap = shap_jit.load_shap()
masker = shap.maskers.Independent(X[:20])
shap.PermutationExplainer(model.predict, masker, seed=0)(X[:1], max_evals=50, silent=True)
hits = misses = 0
for name, module in list(sys.modules.items()):
    if name.startswith("shap."):
        for value in list(vars(module).values()):
            if issubclass(type(value), Dispatcher) and value.__module__ == name:
                hits += sum(value.stats.cache_hits.values())
                misses += sum(value.stats.cache_misses.values())
print(json.dumps({"hits": hits, "misses": misses}))
"""


def _explain_in_new_process(cache_dir: Path) -> dict[str, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", EXPLAIN_ONCE, str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_shap_kernels_from_the_cache(tmp_path: Path) -> None:
    cache_dir = tmp_path / "home" / "cache" / "numba"
    first = _explain_in_new_process(cache_dir)
    assert first["hits"] == 0 and first["misses"] >= 1
    assert list(cache_dir.rglob("*.nbi")), "numba wrote no cache index"
    second = _explain_in_new_process(cache_dir)
    assert second["hits"] >= 1
    assert second["misses"] < first["misses"]


def test_cache_dir_is_private_and_the_first_call_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shap_jit, "_cache_dir", None)
    shap_jit.set_cache_dir(tmp_path / "one" / "numba")
    shap_jit.set_cache_dir(tmp_path / "two" / "numba")
    assert shap_jit._cache_dir == tmp_path / "one" / "numba"
    assert stat.S_IMODE((tmp_path / "one" / "numba").stat().st_mode) == 0o700
    assert not (tmp_path / "two").exists()
