"""Demo models trained on scikit-learn's bundled real datasets (``mlserve serve --demo``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
from sklearn import datasets as sk_datasets

from mlserve.context import Context
from mlserve.datasets import service as datasets
from mlserve.jobs import service as jobs
from mlserve.registry import service as registry
from mlserve.store.orm import TrainingJob
from mlserve.training.spec import TrainSpec, check_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Demo:
    """A demo model: registered name, bundled dataset loader, algorithm."""

    model_name: str
    loader: str
    algorithm: str


DEMOS = (
    # Efron et al. (2004), "Least Angle Regression": 442 patients, 10 features.
    Demo("diabetes", "load_diabetes", "ridge"),
    # Wolberg et al., Breast Cancer Wisconsin (Diagnostic): 569 samples, 30 features.
    Demo("breast_cancer", "load_breast_cancer", "logistic_regression"),
)


def _frame(loader: str) -> pd.DataFrame:
    bunch = getattr(sk_datasets, loader)(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    if loader == "load_breast_cancer":  # labels as names, not 0/1
        frame["target"] = bunch.target_names[bunch.target]
    return frame


def ensure_demo_models(ctx: Context) -> list[str]:
    """Train and register each demo model that is not registered yet.

    Each runs as a real training job (recorded, with lineage) executed in this
    process, and gets the ``production`` alias.

    Returns
    -------
    list of str
        Names of the models created now.
    """
    created = []
    for demo in DEMOS:
        if registry.find_model(ctx, demo.model_name) is not None:
            continue
        dataset = datasets.create_dataset_from_frame(ctx, demo.model_name, _frame(demo.loader))
        spec = TrainSpec(
            dataset_id=dataset.id,
            target="target",
            algorithm=demo.algorithm,
            model_name=demo.model_name,
        )
        task = check_spec(spec, dataset.n_rows, datasets.column_index(dataset))
        job = TrainingJob(
            dataset_id=dataset.id,
            model_name=demo.model_name,
            spec={**spec.model_dump(), "task": task},
        )
        with ctx.db.session() as session:
            session.add(job)
        jobs.execute_job(ctx, job.id, "demo")
        finished = jobs.get_job(ctx, job.id)
        if finished.status != "succeeded" or finished.model_version is None:
            log.error("demo model %s failed: %s", demo.model_name, finished.error)
            continue
        registry.set_alias(ctx, demo.model_name, "production", finished.model_version)
        created.append(demo.model_name)
        log.info("registered demo model %s v%s", demo.model_name, finished.model_version)
    return created
