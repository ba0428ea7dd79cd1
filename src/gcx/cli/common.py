"""What every ``gcx`` command shares: how a refusal is printed, and the common options.

Every command prints a refusal as ``error [code]: sentence`` on stderr and
exits 2, so scripts can match the code; a refusal relayed from another gcx
service carries that service's own code.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from gcx.errors import GcxError

T = TypeVar("T")


def fail(error: GcxError) -> NoReturn:
    body = error.to_dict()
    click.echo(f"error [{body['code']}]: {body['message']}", err=True)
    sys.exit(2)


def refusals(function: Callable[..., T]) -> Callable[..., T]:
    """Turn a refusal raised by the command into its printed code and exit status 2."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except GcxError as error:
            fail(error)

    return wrapper


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def show(value: Any, as_json: bool) -> None:
    """A result as indented JSON, or a dictionary as ``key: value`` lines."""
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
    elif isinstance(value, dict):
        for key, item in value.items():
            click.echo(f"{key}: {item}")
    else:
        click.echo(value)


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The directory holding this service's configuration, keys and database.",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
