"""Decision ids are RFC 9562 version 7 UUIDs: unique, time-ordered, as strings too."""

from __future__ import annotations

import uuid

from serving.decision_ids import decision_id


def test_version_variant_and_timestamp() -> None:
    made = decision_id(now_ns=1_700_000_000_123_456_789)
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert made.int >> 80 == 1_700_000_000_123  # Unix milliseconds in the first 48 bits


def test_later_ids_sort_later_as_text_and_all_are_distinct() -> None:
    ids = [decision_id(now_ns=1_700_000_000_000_000_000 + k * 1_000_000) for k in range(500)]
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)
    same_millisecond = {decision_id(now_ns=1_700_000_000_000_000_000) for _ in range(10_000)}
    assert len(same_millisecond) == 10_000
