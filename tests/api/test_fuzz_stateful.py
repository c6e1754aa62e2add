"""Stateful fuzzing: schemathesis chains operations through the links it infers from the
OpenAPI document (a model's name from ``GET /api/v1/models`` into its versions, aliases,
predictions and V2 routes; a dataset id into its preview and a training job; a job id
into its cancel; a key prefix into its revocation), so that sequences reach objects the
earlier calls created or found (issue 13, "Keep it found").

Every answer passes the same checks as :mod:`tests.api.test_fuzz` (no 5xx, documented
status, content type and body, no 2xx for a schema-breaking request), with the admin key,
and the known problems recognised there are recognised here too.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override

from tests.api.test_fuzz import CHECKS, HYPOTHESIS, OPERATIONS, FuzzWorld, _known_problem, world

__all__ = ["world"]  # the module-scoped app of tests/api/test_fuzz.py, built again here
STEPS = 12
SCENARIOS = 100


def test_stateful_sequences_find_no_server_error(world: FuzzWorld) -> None:
    headers = {"Authorization": f"Bearer {world.admin_key}"}
    seen: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    base = world.schema.as_state_machine()

    own_prefix = world.admin_key.split("_")[1]

    class Machine(base):  # type: ignore[misc, valid-type]
        def before_call(self, case: Case) -> None:
            # The keys list links to DELETE /api/v1/keys/{prefix}: revoking the key the
            # fuzzer sends would turn every later answer into a 401. It revokes the victim.
            if (case.path_parameters or {}).get("prefix") == own_prefix:
                case.path_parameters = {**case.path_parameters, "prefix": world.real["prefix"]}

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            label = f"{case.method.upper()} {case.path}"
            seen[label] += 1
            statuses[response.status_code] += 1
            if _known_problem(world, label, case, response.status_code, response.content):
                return
            case.validate_response(response, checks=CHECKS, headers=headers)

    Machine.run(
        settings=settings(
            HYPOTHESIS,  # test_fuzz.py's: derandomized, no deadline, no example database
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(f"\n{sum(seen.values())} calls over {len(seen)} operations; statuses {dict(statuses)}")
    # The sequences went through links into real objects, not only 404s.
    assert len(seen) >= 10, seen
    assert statuses[200] > 0 and sum(statuses.values()) >= SCENARIOS, statuses
    assert statuses[401] == 0, statuses  # the fuzzer's own key stayed valid


# --------------------------------------------------------------------------- coverage phase


def _coverage_cases(world: FuzzWorld, operation: Any) -> list[Case]:
    """schemathesis's coverage phase for one operation: the boundary values of every
    constraint (minimum and maximum, lengths, enum members, each required field missing,
    wrong types), positive and negative, rather than random ones."""
    generation = world.schema.config.generation_for(operation=operation, phase="coverage")
    generator = CoverageGenerator(
        operation=operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=generation,
        auth_storage=None,
        override=Override(),
        feedback=FeedbackSources(),
    )
    return list(generator)


@pytest.mark.parametrize("label", OPERATIONS)
def test_coverage_phase_finds_no_server_error(world: FuzzWorld, label: str) -> None:
    headers = {"Authorization": f"Bearer {world.admin_key}"}
    own_prefix = world.admin_key.split("_")[1]
    method, path = label.split(" ", 1)
    cases = _coverage_cases(world, world.schema[path][method])
    assert cases, "the coverage phase generated nothing"
    for case in cases:
        if (case.path_parameters or {}).get("prefix") == own_prefix:
            continue  # revoking the fuzzer's own key would 401 the rest
        response = case.call(headers=headers)
        if _known_problem(world, label, case, response.status_code, response.content):
            continue
        case.validate_response(response, checks=CHECKS, headers=headers)
