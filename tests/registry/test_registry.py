"""mlserve.registry.service at the service level: lookups, aliases, resolution, descriptions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_diabetes

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.datasets import service as datasets
from mlserve.errors import NotFound, ValidationFailed
from mlserve.jobs import service as jobs
from mlserve.registry import service as registry
from mlserve.registry import views as registry_views
from mlserve.settings import Settings
from tests.conftest import frame_csv, keyed_client, train, upload


def register_three(client: FlaskClient) -> dict[str, Any]:
    """Upload diabetes and register versions 1, 2, 3 of ``diabetes``; return ids."""
    frame = load_diabetes(as_frame=True).frame
    dataset = upload(client, frame_csv(frame), "diabetes.csv").get_json()
    jobs_done = [
        train(
            client,
            dataset["id"],
            target="target",
            algorithm="ridge",
            model_name="diabetes",
            cv_folds=0,
        ).get_json()
        for _ in range(3)
    ]
    assert [j["model_version"] for j in jobs_done] == [1, 2, 3]
    return {"dataset": dataset, "job": jobs_done[0]}


@pytest.fixture
def three_versions(client: FlaskClient) -> dict[str, Any]:
    """Model ``diabetes`` with versions 1, 2 and 3, in this test's own app."""
    return register_three(client)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Context, dict[str, Any]]]:
    """One app for the module's read-only tests: ``diabetes`` v1-3 and no aliases."""
    home = tmp_path_factory.mktemp("registry") / "home"
    application: Flask = create_app(Settings(home=home, jobs_immediate=True, log_level="WARNING"))
    made = register_three(keyed_client(application))
    context: Context = context_of(application)
    yield context, made
    assert registry.all_aliases(context) == {}, "a read-only test changed the aliases"
    context.db.dispose()


# --------------------------------------------------------------------------- find / get


def test_find_model_returns_none_and_get_model_raises(
    shared: tuple[Context, dict[str, Any]],
) -> None:
    ctx, _made = shared
    assert registry.find_model(ctx, "diabetes").name == "diabetes"
    assert registry.get_model(ctx, "diabetes").name == "diabetes"
    assert registry.find_model(ctx, "nope") is None
    with pytest.raises(NotFound, match="model 'nope' not found") as caught:
        registry.get_model(ctx, "nope")
    assert caught.value.details == {"resource": "model", "key": "nope"}


def test_find_version_returns_none_and_get_version_raises(
    shared: tuple[Context, dict[str, Any]],
) -> None:
    ctx, made = shared
    found = registry.find_version(ctx, "diabetes", 1)
    assert (found.model_name, found.version) == ("diabetes", 1)
    assert found.job_id == made["job"]["id"]
    assert registry.get_version(ctx, "diabetes", 3).version == 3
    assert registry.find_version(ctx, "diabetes", 4) is None
    assert registry.find_version(ctx, "nope", 1) is None
    with pytest.raises(NotFound, match="model 'diabetes' has no version 4"):
        registry.get_version(ctx, "diabetes", 4)
    with pytest.raises(NotFound, match="model 'nope' not found"):
        registry.get_version(ctx, "nope", 1)


def test_find_dataset_and_job_return_none_and_get_raises(
    shared: tuple[Context, dict[str, Any]],
) -> None:
    ctx, made = shared
    dataset_id = made["dataset"]["id"]
    job_id = made["job"]["id"]
    assert datasets.find_dataset(ctx, dataset_id).n_rows == 442
    assert jobs.find_job(ctx, job_id).status == "succeeded"
    assert datasets.find_dataset(ctx, "nope") is None
    assert jobs.find_job(ctx, "nope") is None
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        datasets.get_dataset(ctx, "nope")
    with pytest.raises(NotFound, match="training job 'nope' not found"):
        jobs.get_job(ctx, "nope")


def test_list_versions_newest_first(shared: tuple[Context, dict[str, Any]]) -> None:
    ctx, _made = shared
    assert [v.version for v in registry.list_versions(ctx, "diabetes")] == [3, 2, 1]
    assert registry.latest_versions(ctx) == {"diabetes": 3}
    with pytest.raises(NotFound, match="model 'nope' not found"):
        registry.list_versions(ctx, "nope")


# --------------------------------------------------------------------------- resolve


def test_resolve_defaults_to_latest(shared: tuple[Context, dict[str, Any]]) -> None:
    ctx, _made = shared
    assert registry.resolve(ctx, "diabetes").version == 3


def test_resolve_prefers_production_over_latest(
    ctx: Context, three_versions: dict[str, Any]
) -> None:
    registry.set_alias(ctx, "diabetes", "production", 1)
    assert registry.resolve(ctx, "diabetes").version == 1
    registry.delete_alias(ctx, "diabetes", "production")
    assert registry.resolve(ctx, "diabetes").version == 3


def test_resolve_alias_beats_production(ctx: Context, three_versions: dict[str, Any]) -> None:
    registry.set_alias(ctx, "diabetes", "production", 1)
    registry.set_alias(ctx, "diabetes", "staging", 2)
    assert registry.resolve(ctx, "diabetes", alias="staging").version == 2
    assert registry.resolve(ctx, "diabetes", alias="production").version == 1


def test_resolve_version_beats_aliases(ctx: Context, three_versions: dict[str, Any]) -> None:
    registry.set_alias(ctx, "diabetes", "production", 1)
    assert registry.resolve(ctx, "diabetes", version=2).version == 2
    assert registry.resolve(ctx, "diabetes", version=3).version == 3


def test_resolve_latest_alias_ignores_production(
    ctx: Context, three_versions: dict[str, Any]
) -> None:
    registry.set_alias(ctx, "diabetes", "production", 1)
    assert registry.resolve(ctx, "diabetes", alias="latest").version == 3


@pytest.mark.parametrize(
    ("name", "alias", "version", "error", "pattern"),
    [
        ("diabetes", "staging", 1, ValidationFailed, "alias or version, not both"),
        ("diabetes", "staging", None, NotFound, "model 'diabetes' has no alias 'staging'"),
        ("diabetes", None, 4, NotFound, "model 'diabetes' has no version 4"),
        ("nope", None, None, NotFound, "model 'nope' not found"),
        ("nope", "staging", None, NotFound, "model 'nope' not found"),
        ("nope", "latest", None, NotFound, "model 'nope' not found"),
        ("nope", None, 1, NotFound, "model 'nope' not found"),
    ],
)
def test_resolve_unresolvable_raises(
    shared: tuple[Context, dict[str, Any]],
    name: str,
    alias: str | None,
    version: int | None,
    error: type[Exception],
    pattern: str,
) -> None:
    ctx, _made = shared
    with pytest.raises(error, match=pattern):
        registry.resolve(ctx, name, alias=alias, version=version)


# --------------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    "alias",
    [
        "Prod!",
        "Production",
        "1st",
        "-x",
        "_x",
        "",
        "a" * 65,
        "latest",
        "pro duction",
        "prod/1",
        "prod.v1",
    ],
)
def test_set_alias_invalid_name_raises(shared: tuple[Context, dict[str, Any]], alias: str) -> None:
    ctx, _made = shared
    with pytest.raises(ValidationFailed, match="alias must be") as caught:
        registry.set_alias(ctx, "diabetes", alias, 1)
    assert caught.value.details == {"field": "alias", "value": alias}
    assert registry.aliases(ctx, "diabetes") == {}


@pytest.mark.parametrize("alias", ["a", "production", "staging-2", "canary_eu", "a" * 64])
def test_set_alias_valid_name_is_stored(shared: tuple[Context, dict[str, Any]], alias: str) -> None:
    ctx, _made = shared
    try:
        row = registry.set_alias(ctx, "diabetes", alias, 2)
        assert (row.model_name, row.alias, row.version) == ("diabetes", alias, 2)
        assert registry.aliases(ctx, "diabetes") == {alias: 2}
        assert registry.resolve(ctx, "diabetes", alias=alias).version == 2
    finally:
        registry.delete_alias(ctx, "diabetes", alias)
    assert registry.aliases(ctx, "diabetes") == {}


def test_set_alias_missing_version_or_model_raises(
    shared: tuple[Context, dict[str, Any]],
) -> None:
    ctx, _made = shared
    with pytest.raises(NotFound, match="has no version 4"):
        registry.set_alias(ctx, "diabetes", "production", 4)
    with pytest.raises(NotFound, match="model 'nope' not found"):
        registry.set_alias(ctx, "nope", "production", 1)
    assert registry.all_aliases(ctx) == {}


def test_set_alias_moves_existing_alias(ctx: Context, three_versions: dict[str, Any]) -> None:
    registry.set_alias(ctx, "diabetes", "production", 1)
    moved = registry.set_alias(ctx, "diabetes", "production", 3)
    assert moved.version == 3
    assert registry.aliases(ctx, "diabetes") == {"production": 3}


def test_delete_alias_removes_and_missing_raises(
    ctx: Context, three_versions: dict[str, Any]
) -> None:
    registry.set_alias(ctx, "diabetes", "production", 1)
    registry.set_alias(ctx, "diabetes", "staging", 2)
    registry.delete_alias(ctx, "diabetes", "production")
    assert registry.aliases(ctx, "diabetes") == {"staging": 2}
    with pytest.raises(NotFound, match="has no alias 'production'") as caught:
        registry.delete_alias(ctx, "diabetes", "production")
    assert caught.value.details["resource"] == "alias"
    assert registry.find_version(ctx, "diabetes", 1) is not None


# --------------------------------------------------------------------------- descriptions


def test_describe_models_lists_latest_and_aliases(
    client: FlaskClient, ctx: Context, three_versions: dict[str, Any]
) -> None:
    job = train(
        client,
        three_versions["dataset"]["id"],
        target="target",
        algorithm="lasso",
        model_name="another",
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded"
    registry.set_alias(ctx, "diabetes", "production", 2)
    described = registry_views.describe_models(ctx)
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in described] == [
        ("another", 1, {}),
        ("diabetes", 3, {"production": 2}),
    ]
    assert all(
        set(m) == {"name", "latest_version", "aliases", "created_at", "updated_at"}
        for m in described
    )
    assert registry.all_aliases(ctx) == {"diabetes": {"production": 2}}


def test_describe_models_empty_registry(ctx: Context) -> None:
    assert registry_views.describe_models(ctx) == []
    assert registry.latest_versions(ctx) == {}


def test_describe_model_versions_carry_their_aliases(
    ctx: Context, three_versions: dict[str, Any]
) -> None:
    registry.set_alias(ctx, "diabetes", "production", 2)
    registry.set_alias(ctx, "diabetes", "staging", 2)
    described = registry_views.describe_model(ctx, "diabetes")
    assert described["latest_version"] == 3
    assert described["aliases"] == {"production": 2, "staging": 2}
    assert [(v["version"], v["aliases"]) for v in described["versions"]] == [
        (3, []),
        (2, ["production", "staging"]),
        (1, []),
    ]
    assert registry_views.describe_version(ctx, "diabetes", 2)["aliases"] == [
        "production",
        "staging",
    ]
    with pytest.raises(NotFound, match="model 'nope' not found"):
        registry_views.describe_model(ctx, "nope")
    with pytest.raises(NotFound, match="has no version 9"):
        registry_views.describe_version(ctx, "diabetes", 9)
