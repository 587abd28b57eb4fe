"""What every client command shares: the ``--manager`` and ``-o`` options, value
parsers (sizes, ``K=V``), and ``with_client``, which runs a coroutine against
the manager and turns a domain error into a one-line message and exit code 1.

A ``ValidationError`` is shown with the field the server named, so bad input
reads the same from the CLI as from grpcurl or REST.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from corral.cli import connection
from corral.client import DEFAULT_TARGET, Client
from corral.errors import CorralError, Unavailable, ValidationError
from corral.output import OUTPUTS

T = TypeVar("T")

# Piped output is not cut to 80 columns: tables stay greppable.
_PIPE_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, soft_wrap=True, width=_PIPE_WIDTH)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

ManagerOption = Annotated[
    str,
    typer.Option(
        "--manager",
        envvar="CORRAL_MANAGER",
        help="Manager address (HOST:PORT); several: a:50051,b:50051.",
    ),
]
OutputOption = Annotated[
    str,
    typer.Option("--output", "-o", help="table or json.", show_default=True),
]

_SIZE = re.compile(r" *(\d+(?:\.\d+)?) *([KMGTP]i?|[kmgtp]i?)?[Bb]? *", re.ASCII)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_size(text: str, field: str) -> int:
    """``512Mi``, ``1G``, ``1.5Gi``, ``100`` (bytes) -> bytes. Ki/Mi/Gi are powers of 1024."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValidationError(field, f"{text!r} is not a size (e.g. 512Mi, 1G, 100000)")
    number, unit = float(match.group(1)), (match.group(2) or "")
    base = unit[:1].lower()
    factor = 1024 ** ("kmgtp".index(base) + 1) if unit.endswith("i") else _UNITS[base]
    return int(number * factor)


def parse_pairs(items: Iterable[str], field: str, *, sep: str = "=") -> dict[str, str]:
    """``["K=V", ...]`` -> a dict; a missing separator is an error naming the field."""
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        key, found, value = item.partition(sep)
        if not found or not key:
            raise ValidationError(f"{field}[{i}]", f"{item!r} is not KEY{sep}VALUE")
        out[key] = value
    return out


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValidationError("output", f"must be one of {', '.join(OUTPUTS)}")
    return output


def fail(err: CorralError) -> typer.Exit:
    """Print a domain error the way users read it and return the exit to raise."""
    if isinstance(err, ValidationError):
        where = f"invalid {err.field}" if err.field else "invalid input"
        errors.print(f"[red]error:[/] {escape(where)}: {escape(err.problem)}")
    else:
        errors.print(f"[red]error:[/] {escape(err.message)}")
    return typer.Exit(1)


def with_client(manager: str, work: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``work`` with a client of ``manager``; domain errors exit 1 with a message."""

    async def go() -> T:
        link = connection.current()
        async with Client(manager or DEFAULT_TARGET, tls=link.tls, token=link.token) as client:
            return await work(client)

    try:
        return asyncio.run(go())
    except Unavailable as err:
        errors.print(
            f"[red]error:[/] cannot reach the manager at {escape(manager)}"
            f" (is `corral up` running? set --manager or CORRAL_MANAGER): {escape(err.message)}"
        )
        raise typer.Exit(1) from None
    except CorralError as err:
        raise fail(err) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def parse_or_exit(parse: Callable[[], T]) -> T:
    """Local parsing (sizes, pairs, files) fails like the server would: exit 1, field named."""
    try:
        return parse()
    except ValidationError as err:
        raise fail(err) from None
