"""The prediction service's own helpers (the route tests are in tests/api)."""

from __future__ import annotations

import uuid

from mlserve.serving.predict import new_prediction_id


def test_prediction_ids_are_random_version_4_uuids() -> None:
    ids = [new_prediction_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:2_000]:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value  # 32 lowercase hex characters, as uuid4().hex
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # The 122 random bits are used: every hex position but the fixed version digit varies.
    varying = [len({value[i] for value in ids}) for i in range(32)]
    assert varying[12] == 1 and ids[0][12] == "4"
    assert varying[16] == 4  # the variant digit: 8, 9, a or b
    assert all(count == 16 for i, count in enumerate(varying) if i not in (12, 16))
