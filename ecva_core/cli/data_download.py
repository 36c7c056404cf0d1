"""``ecva data download``: fetch the ECVA release from ModelScope (or a local copy) and validate it."""

from __future__ import annotations

from pathlib import Path

import click

from ecva_core.cli.options import emit_json, json_option, log


@click.command()
@click.option("--dataset-id", default=None, help="ModelScope dataset id (default: $ECVA_DATASET_ID or gouchenyi/ECVA).")
@click.option(
    "--include",
    type=click.Choice(["annotations", "videos", "all"]),
    default="annotations",
    show_default=True,
    help="Which files to fetch.",
)
@click.option("--to", "dest", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Target folder (default: $ECVA_HOME/ecva).")
@click.option("--from", "source", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Take the files from a local copy instead of the hub.")
@click.option("--revision", default="master", show_default=True, help="Dataset revision on the hub.")
@json_option
def download(
    dataset_id: str | None, include: str, dest: Path | None, source: Path | None, revision: str, as_json: bool
) -> None:
    """Download (resuming if interrupted), verify, then print the data validation report."""
    from ecva_core.config import get_settings
    from ecva_core.dataset import load_dataset
    from ecva_core.dataset.download import copy_local, download_dataset
    from ecva_core.errors import DataError

    settings = get_settings()
    dest = dest or settings.home / "ecva"
    dataset_id = dataset_id or settings.dataset_id
    if source is not None:
        log(f"Copying {include} files from {source} to {dest} ...")
        result = copy_local(source, dest, include)
    else:
        log(f"Downloading {include} files of {dataset_id} to {dest} (resumes where it stopped) ...")
        result = download_dataset(dest, dataset_id, include=include, revision=revision)
    log(f"{len(result.files)} files, {result.bytes / 1e6:.1f} MB, {result.verified} verified.")

    try:
        report = load_dataset(dest).validation_report()
    except DataError as exc:
        report = None
        log(f"No validation report: {exc}")
    payload = {
        "dest": str(dest),
        "source": result.source,
        "files": len(result.files),
        "bytes": result.bytes,
        "verified": result.verified,
        "report": report,
    }
    if as_json:
        emit_json(payload)
        return
    if report is None:
        click.echo(f"Files in {dest}; fetch the annotations too (--include annotations) to use them.")
        return
    click.echo(f"Dataset in {dest}: {report['videos']} videos, {report['qa_items']} QA items, "
               f"{len(report['flags'])} flagged cells (see `ecva data validate {dest}`).")
    click.echo(f"Use it by default with: export ECVA_DATA={dest}")
