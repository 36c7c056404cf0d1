"""Options and output helpers shared by every command (``--data``, ``--db``, ``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ecva_core.config import MODEL_HUB_ENV, MODEL_HUBS

data_option = click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Dataset folder or annotation file (default: $ECVA_DATA, else the generated demo dataset).",
)
db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Results database (default: $ECVA_DB, else results.db under $ECVA_HOME).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout (logs go to stderr)."
)
fast_decode_option = click.option(
    "--fast-decode", is_flag=True,
    help="Local models: static KV cache with a compiled decode step (anomshield on a GPU: about 1 min to compile "
         "at load, then ~13x faster tokens).",
)

hub_option = click.option(
    "--hub", "hub", type=click.Choice(MODEL_HUBS), default=None,
    help=f"Where model ids (org/name) are fetched from (default: ${MODEL_HUB_ENV}, else huggingface); a model "
         "already in either hub's local cache is used without asking.",
)


def emit_json(payload: dict[str, Any]) -> None:
    """Write one JSON object on stdout, the only thing a ``--json`` command prints there."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """Progress and notes go to stderr so that stdout stays machine-readable."""
    click.echo(message, err=True)


def common(*decorators: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[..., Any]:
    """Apply several option decorators in reading order."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return wrap
