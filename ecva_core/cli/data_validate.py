"""``ecva data validate [PATH] [--json]``: load a dataset and report its counts and flagged cells."""

from __future__ import annotations

from pathlib import Path

import click

from ecva_core.cli.options import emit_json, json_option

_COUNT_LABELS = (
    ("videos", "source videos"),
    ("records", "annotation records"),
    ("clips", "sub-clip records"),
    ("usable_videos", "usable videos"),
    ("unusable_videos", "unusable records"),
    ("qa_items", "scored QA items"),
    ("qa_items_with_clips", "scored QA items incl. sub-clips"),
    ("aux_items", "auxiliary QA items"),
    ("flagged_records", "records with flags"),
)


def _print_report(report: dict) -> None:
    click.echo(f"Dataset      {report['dataset']}")
    click.echo(f"Annotations  {report['annotation_file']}")
    click.echo("")
    for key, label in _COUNT_LABELS:
        click.echo(f"  {label:<32} {report[key]:>6}")
    counts = report["problem_counts"]
    if counts:
        click.echo("\nProblems by kind")
        for kind, count in counts.items():
            click.echo(f"  {kind:<32} {count:>6}")
    flags = report["flags"]
    if not flags:
        click.echo("\nNo flagged cells.")
        return
    click.echo(f"\nFlagged cells ({len(flags)})")
    rows = [("video", "row", "field", "problem")]
    rows += [(f["video_id"], str(f["row"] or ""), f["field"], f["problem"]) for f in flags]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        click.echo("  " + "  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3])


@click.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@json_option
def validate(path: Path | None, as_json: bool) -> None:
    """Check an annotation file or dataset folder and list every flagged cell.

    PATH defaults to $ECVA_DATA, else the generated demo dataset.
    """
    from ecva_core.dataset import load_dataset

    report = load_dataset(path).validation_report()
    if as_json:
        emit_json(report)
    else:
        _print_report(report)
