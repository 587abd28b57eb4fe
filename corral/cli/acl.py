"""``corral acl bootstrap`` and ``corral acl token create|ls|revoke``.

A secret is printed once, when its token is made; ``-o json`` prints an
object with ``name``, ``role``, ``namespace`` and ``secret`` so a script can
keep it. ``ls`` never shows secrets: the manager only has their hashes.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from corral import output
from corral.cli.options import (
    ManagerOption,
    OutputOption,
    check_output,
    console,
    parse_or_exit,
    with_client,
)
from corral.client import DEFAULT_TARGET
from corral.model import AclToken


def _json(token: AclToken) -> dict[str, Any]:
    data = dataclasses.asdict(token)
    if not token.secret:
        del data["secret"]
    return data


def _show_new(token: AclToken, out: str) -> None:
    if out == "json":
        console.print_json(json.dumps(_json(token)))
        return
    scope = token.namespace or "every namespace"
    console.print(f"token {token.name} (role {token.role}, {scope})")
    console.print(f"secret: {token.secret}", highlight=False)
    console.print("The secret is shown once: keep it (CORRAL_TOKEN or --token).")


def bootstrap(manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table") -> None:
    """Make the management token (admin); works once per cluster."""
    parse_or_exit(lambda: check_output(out))
    _show_new(with_client(manager, lambda c: c.acl_bootstrap()), out)


def token_create(
    name: Annotated[str, typer.Option(help="Token name (shown as the actor of its events).")],
    role: Annotated[str, typer.Option(help="reader, submitter, operator, admin or node.")],
    namespace: Annotated[
        str, typer.Option(help="Limit the token to one namespace (default: all).")
    ] = "",
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Make a token with a role; its secret is printed once."""
    parse_or_exit(lambda: check_output(out))
    _show_new(with_client(manager, lambda c: c.create_token(name, role, namespace)), out)


def token_ls(manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table") -> None:
    """List tokens (never their secrets)."""
    parse_or_exit(lambda: check_output(out))
    tokens = with_client(manager, lambda c: c.list_tokens())
    if out == "json":
        console.print_json(json.dumps([_json(t) for t in tokens]))
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "ROLE", "NAMESPACE", "CREATED"):
        table.add_column(column)
    for t in tokens:
        table.add_row(t.name, t.role, t.namespace or "*", output.ago(t.created_at))
    console.print(table)


def token_revoke(
    name: Annotated[str, typer.Argument(help="Token name.")],
    manager: ManagerOption = DEFAULT_TARGET,
) -> None:
    """Revoke a token: its calls are refused and its open streams end."""
    with_client(manager, lambda c: c.revoke_token(name))
    console.print(f"token {name} revoked")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Access control: tokens and roles.", no_args_is_help=True)
    group.command("bootstrap")(bootstrap)
    tokens = typer.Typer(help="Create, list and revoke tokens.", no_args_is_help=True)
    tokens.command("create")(token_create)
    tokens.command("ls")(token_ls)
    tokens.command("revoke")(token_revoke)
    group.add_typer(tokens, name="token")
    app.add_typer(group, name="acl")
