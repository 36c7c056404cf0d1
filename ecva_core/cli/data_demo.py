"""``ecva data demo``: generate the synthetic demo dataset (the default when no real data is set)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ecva_core.cli.options import emit_json, json_option, log


@click.command()
@click.option("--to", "dest", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Target folder (default: $ECVA_DEMO_DIR, else demo/ under $ECVA_HOME).")
@click.option("--force", is_flag=True, help="Rebuild even if a complete demo is already there.")
@json_option
def demo(dest: Path | None, force: bool, as_json: bool) -> None:
    """Generate the demo clips, annotations and three demo submissions (offline, a few seconds)."""
    from ecva_core.config import get_settings
    from ecva_core.dataset.demo import demo_summary, ensure_demo, generate_demo, is_demo_dir

    settings = get_settings()
    dest = (dest or settings.demo_dir or settings.home / "demo").expanduser().resolve()
    existed = is_demo_dir(dest)
    started = time.perf_counter()
    if force or not existed:
        log(f"Generating the demo dataset in {dest} ...")
    (generate_demo if force else ensure_demo)(dest)
    generated = force or not existed
    summary = {**demo_summary(dest), "generated": generated,
               "seconds": round(time.perf_counter() - started, 2) if generated else 0.0}
    if as_json:
        emit_json(summary)
        return
    verb = "Generated" if generated else "Already there (use --force to rebuild)"
    click.echo(f"{verb}: GENERATED DEMO dataset in {dest} - synthetic clips, not ECVA data.")
    click.echo(f"  {len(summary['clips'])} clips in {dest / 'videos'}:")
    for clip in summary["clips"]:
        click.echo(f"    {clip['video_id']:>3}  {clip['scene']:<14} {clip['category']:<9} {clip['moments']}")
    click.echo(f"  annotations: {summary['annotation_file']}")
    for path in summary["submissions"]:
        click.echo(f"  submission:  {path}")
    click.echo(f"Next: `ecva data validate {dest}`; score a demo submission with `ecva score`.")
