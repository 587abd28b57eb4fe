"""``manager.ids``: task ids are random version-4 UUIDs in their canonical text."""

import uuid

from manager.ids import new_task_ids


def test_ids_are_canonical_version_4_uuids() -> None:
    ids = new_task_ids(2000)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    assert len(set(ids)) == len(ids)


def test_every_variant_nibble_occurs() -> None:
    # The variant keeps two random bits: all four of 8, 9, a, b appear.
    assert {text[19] for text in new_task_ids(200)} == set("89ab")


def test_none_asked_none_made() -> None:
    assert new_task_ids(0) == []
