"""JSON from outside, with its nesting bounded before it is parsed.

Python's ``json`` (and protobuf's ``json_format`` after it) recurse once per
level: a body of a thousand ``[`` raised RecursionError deep inside a route,
which became a 500 and dropped the keep-alive connection. So the depth is
measured first, without recursion and mostly at C speed: strings are cut out
with one regular expression, brackets become +1 and -1 with two
``bytes.translate``, and their running sum is the depth. Malformed brackets
are left for the parser to name.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from corral.errors import ValidationError

# Deeper than any Corral message (a task spec is under ten levels) or manifest.
MAX_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Openers to +1 and closers to -1, read as signed bytes.
_SIGNS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")


def depth_exceeds(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON text nests arrays and objects more than ``limit`` deep."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) <= limit:
        return False
    signs = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_SIGNS)
    return max(accumulate(memoryview(signs).cast("b")), default=0) > limit


def nested_deeper(data: Any, limit: int = MAX_DEPTH) -> bool:
    """True when parsed data (lists and dicts) nests more than ``limit`` deep; no recursion."""
    if not isinstance(data, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def loads(raw: bytes | str, field: str = "body") -> Any:
    """Parse JSON text, raising ``ValidationError`` naming ``field`` for any bad input."""
    if depth_exceeds(raw):
        raise ValidationError(field, f"is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValidationError(field, f"is not valid JSON: {err}") from None
