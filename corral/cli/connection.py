"""How every client command reaches the manager: mTLS files and a bearer token.

``add_to_commands`` gives every client command (not the servers, which take
their own) ``--tls-cert --tls-key --tls-ca`` (env ``CORRAL_TLS_*``),
``--token`` (env ``CORRAL_TOKEN``) and ``--data-dir`` (env
``CORRAL_DATA_DIR``), in one place instead of in forty signatures. The
values land in ``current()``, which ``with_client`` reads.

The token is the first of ``--token``, ``CORRAL_TOKEN`` and the file
``<data-dir>/token`` (what ``corral up --acl`` writes, mode 0600).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from corral.errors import ValidationError
from corral.tls import TlsFiles

DEFAULT_DATA_DIR = Path(".corral")
TOKEN_FILE = "token"


@dataclass(frozen=True)
class Connection:
    tls: TlsFiles = field(default_factory=TlsFiles)
    token: str = ""


_current = Connection()


def current() -> Connection:
    return _current


def token_of(flag: str, data_dir: Path) -> str:
    """``--token``/``CORRAL_TOKEN`` when given, else ``<data-dir>/token`` when it exists."""
    if flag:
        return flag.strip()
    path = data_dir / TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as err:
        raise ValidationError("token", f"cannot read {path}: {err.strerror}") from None


_OPTIONS: dict[str, Any] = {
    "tls_cert": Annotated[
        Path | None,
        typer.Option(envvar="CORRAL_TLS_CERT", help="PEM client certificate (mTLS)."),
    ],
    "tls_key": Annotated[
        Path | None, typer.Option(envvar="CORRAL_TLS_KEY", help="PEM key of --tls-cert.")
    ],
    "tls_ca": Annotated[
        Path | None, typer.Option(envvar="CORRAL_TLS_CA", help="PEM CA that signed the manager.")
    ],
    "token": Annotated[
        str,
        typer.Option(
            envvar="CORRAL_TOKEN",
            help="ACL token (else CORRAL_TOKEN, else <data-dir>/token).",
            show_default=False,
        ),
    ],
    "data_dir": Annotated[
        Path, typer.Option(envvar="CORRAL_DATA_DIR", help="Where `corral up` keeps state.")
    ],
}
_DEFAULTS: dict[str, Any] = {
    "tls_cert": None,
    "tls_key": None,
    "tls_ca": None,
    "token": "",
    "data_dir": DEFAULT_DATA_DIR,
}


def with_connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with the connection options added; they set ``current()`` then it runs."""
    signature = inspect.signature(command, eval_str=True)
    hints = typing.get_type_hints(command, include_extras=True)
    extra = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS[name], annotation=kind
        )
        for name, kind in _OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _current  # noqa: PLW0603 -- one invocation per process
        values = {name: kwargs.pop(name) for name in _OPTIONS}
        from corral.cli.options import parse_or_exit

        token = parse_or_exit(lambda: token_of(values["token"], values["data_dir"]))
        tls = TlsFiles(values["tls_cert"], values["tls_key"], values["tls_ca"])
        _current = Connection(tls=tls, token=token)
        return command(*args, **kwargs)

    params = [p for p in signature.parameters.values() if p.name not in _OPTIONS]
    wrapper.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**hints, **_OPTIONS}
    return wrapper


def add_to_commands(app: typer.Typer, *, skip: frozenset[str]) -> None:
    """Wrap every command of ``app`` and its groups, except those named in ``skip``."""
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__ if info.callback else "")
        if info.callback is not None and name not in skip:
            info.callback = with_connection_options(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None and group.name not in skip:
            add_to_commands(group.typer_instance, skip=frozenset())
