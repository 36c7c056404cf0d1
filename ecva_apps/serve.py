"""``ecva serve explorer|chat``: start the Streamlit explorer or the Gradio chat app.

Declared as the ``serve`` entry of the ``ecva.commands`` entry-point group, so the ``ecva`` command
offers it without the library importing the apps.

The explorer runs in its own ``streamlit run`` process (Streamlit owns its server loop); the
dataset and database choices travel to it through ``ECVA_DATA`` / ``ECVA_DB``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import click

from ecva_apps.explorer import APP_SCRIPT
from ecva_core.cli.options import common, data_option, db_option, fast_decode_option, hub_option, log
from ecva_core.config import get_settings
from ecva_core.errors import ConfigError
from ecva_core.sharing import SUBMIT_TOKEN_VAR, sharing_settings, submit_access


def explorer_command(port: int, address: str = "127.0.0.1", max_upload_mb: float | None = None) -> list[str]:
    """The ``streamlit run`` command line for the explorer, headless and without telemetry.

    Streamlit's own protections are set explicitly so no config file turns them off: XSRF
    protection on, and the server refuses an upload over the submission size limit before reading it.
    """
    if max_upload_mb is None:
        max_upload_mb = get_settings().max_submission_mb
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.headless=true",
        f"--server.port={port}",
        f"--server.address={address}",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
        "--global.developmentMode=false",
        "--server.enableXsrfProtection=true",
        "--server.enableCORS=true",
        f"--server.maxUploadSize={max(1, math.ceil(max_upload_mb))}",
    ]


def explorer_env(data_path: Path | None, db_path: Path | None) -> dict[str, str]:
    """The environment for the app process: the caller's, plus the chosen data and database."""
    env = dict(os.environ)
    if data_path is not None:
        if not data_path.exists():
            raise ConfigError(f"--data {data_path}: no such file or folder; pass a dataset folder or file")
        env["ECVA_DATA"] = str(data_path.resolve())
    if db_path is not None:
        env["ECVA_DB"] = str(db_path.resolve())
    return env


@click.group()
def serve() -> None:
    """Start the explorer (Streamlit) or chat (Gradio) app."""


@serve.command()
@click.option("--port", default=8501, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 to share).")
@common(data_option, db_option)
def explorer(port: int, address: str, data_path: Path | None, db_path: Path | None) -> None:
    """Start the benchmark explorer (leaderboard, questions, compare, submit, dataset)."""
    env = explorer_env(data_path, db_path)
    log(f"explorer: http://{address}:{port}  (Ctrl+C to stop)")
    access = submit_access(address, None, sharing_settings())
    if not access.can_submit and not access.needs_token:
        log(f"the Submit page is read-only: {SUBMIT_TOKEN_VAR} is not set and {address} is not loopback")
    command = explorer_command(port, address)
    # Become the Streamlit server rather than its parent: stopping this process then stops the
    # app, and no orphaned server outlives a terminal, a supervisor or a test that ends it.
    os.execve(command[0], command, env)


@serve.command()
@click.option("--model", "model_spec", default=None, help="Chat model spec (default: $ECVA_CHAT_MODEL).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 to share).")
@fast_decode_option
@hub_option
@common(data_option)
def chat(model_spec: str | None, port: int, address: str, fast_decode: bool, hub: str | None,
         data_path: Path | None) -> None:
    """Start the Gradio chat app: ask a video LLM about a clip."""
    from ecva_apps import chat_app

    options: dict[str, object] = {"static_cache": True} if fast_decode else {}
    if hub:
        options["hub"] = hub
    chat_app.launch(model_spec, port, data_path, host=address, model_options=options)
