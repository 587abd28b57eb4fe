"""The merged-logs line splitter: whole lines, prefixed, whatever the chunking."""

from __future__ import annotations

from manager.logmerging import MAX_LINE, Source, lines


def test_chunks_become_whole_prefixed_lines() -> None:
    feed = lines(b"web-1 | ")
    assert feed(b"hel") == []
    assert feed(b"lo\nwor") == [b"web-1 | hello\n"]
    assert feed(b"ld\n\nx") == [b"web-1 | world\n", b"web-1 | \n"]
    assert feed(None) == [b"web-1 | x\n"]
    assert feed(None) == []


def test_a_line_without_end_is_cut_at_the_bound() -> None:
    feed = lines(b"p | ")
    out = feed(b"x" * (MAX_LINE + 10))
    assert out == [b"p | " + b"x" * MAX_LINE + b"\n"]
    assert feed(None) == [b"p | " + b"x" * 10 + b"\n"]


def test_the_attempt_shows_once_restarted() -> None:
    assert Source("id", "web-1", 1).prefix == b"web-1 | "
    assert Source("id", "web-1", 3).prefix == b"web-1#3 | "
