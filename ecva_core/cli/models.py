"""``ecva models download``: fetch everything a model spec needs, so it loads later without a hub."""

from __future__ import annotations

from pathlib import Path

import click

from ecva_core.cli.options import emit_json, hub_option, json_option, log


@click.group()
def models() -> None:
    """Fetch model weights from the Hugging Face hub or ModelScope for offline use."""


@models.command()
@click.argument("spec")
@hub_option
@click.option(
    "--to",
    "dest",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Put each model in DIR/ORG/NAME (default: the hub's own cache, which loading checks first).",
)
@json_option
def download(spec: str, hub: str | None, dest: Path | None, as_json: bool) -> None:
    """Download (resuming if interrupted) and verify what SPEC needs: for hf: the model; for anomshield:
    the checkpoint, its base language model and its CLIP vision tower. Prints the spec to use offline."""
    from ecva_core.models.prefetch import prefetch

    log(f"Fetching what {spec} needs (resumes where it stopped) ...")
    result = prefetch(spec, hub=hub, dest=dest)
    if as_json:
        emit_json(result.as_dict())
        return
    for part in result.parts:
        size = f", {part.bytes / 1e6:.1f} MB, {part.verified} files verified" if part.source == "download" else ""
        click.echo(f"{part.role}: {part.repo_id} -> {part.path} ({part.source}{size})")
    for note in result.notes:
        click.echo(f"Note: {note}")
    click.echo(f"Use it offline with: --model {result.offline_spec}  (HF_HUB_OFFLINE=1 keeps every hub out)")
