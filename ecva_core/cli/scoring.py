"""``ecva score``, ``ecva leaderboard``, ``ecva compare`` and ``ecva results export|import``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ecva_core.cli.options import common, data_option, db_option, emit_json, json_option, log
from ecva_core.metrics.measures import COMPACT_TEXT_METRICS, NORMAL_JUDGE_METRICS, PILLARS
from ecva_core.metrics.protocol import DEFAULT, HALLUCINATION_READINGS, PROTOCOLS, READING_LABELS
from ecva_core.schema import KEYFRAMES_REMOVED_PROBE, SCORED_TASKS

JUDGE_ROWS = ("anomeval", *NORMAL_JUDGE_METRICS)  # shown with the judge's status when it did not run
SCORED = tuple(t.value for t in SCORED_TASKS)
LEADERBOARD_WIDTH = 120  # the default leaderboard fits a terminal this wide
PILLAR_LETTERS = {p: p[0].upper() for p in PILLARS}
PROTOCOL_NOTE = (
    "Protocol: bleu*/rouge* are this tool's (expert answer as reference, normalised tokens); bleu_official/"
    "rougeL_official reproduce the official script; the protocol column names who made each model's judge scores."
)


def _open_db(db_path: Path | None):
    from ecva_core.config import get_settings
    from ecva_core.results.db import ResultsDB

    return ResultsDB(db_path or get_settings().db_path)


def _fmt(row: dict[str, Any], measure: str) -> str:
    """``mean [lo, hi]`` from a flat aggregate row (``measure``, ``measure_lo``, ``measure_hi``)."""
    value = row.get(measure)
    if value is None:
        return "-"
    text = f"{value:.3f}"
    low, high = row.get(f"{measure}_lo"), row.get(f"{measure}_hi")
    if low is not None and high is not None:
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def _print_table(title: str, header: list[str], rows: list[list[str]], width: int | None = None) -> None:
    """A rich table as wide as its cells, or at most ``width`` with the second column (names) folded."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, no_wrap=width is None or i != 1, overflow="fold")
    for row in rows:
        table.add_row(*row)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    natural = max(80, sum(widths) + 3 * len(widths) + 1)
    Console(width=natural if width is None else min(natural, width)).print(table)


class _Bar:
    """A rich progress bar on stderr driven by the pipeline's ``progress(stage, done, total)``."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--model", "-m", required=True, help="Name the results are stored under.")
@click.option("--task", default=None, help="Task of a one-task file without task_type (Description/Cause/Result...).")
@click.option(
    "--probe",
    default=None,
    is_flag=False,
    flag_value=KEYFRAMES_REMOVED_PROBE,
    help=f"Mark every answer as a probe answer (given with key frames removed); default {KEYFRAMES_REMOVED_PROBE}.",
)
@click.option(
    "--judge/--no-judge",
    default=None,
    help="Run the AnomEval judge (default: when one is configured). A file already judged by another "
    "judge model (ECVA_JUDGE_MODEL) is judged again; its predictions and text metrics are kept.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="Text metric(s) to compute (default: every one available; see the README's metric table).",
)
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    default=DEFAULT,
    show_default=True,
    help="default: this tool's judge prompts and metrics; official: the official ECVA code's judge model "
    "(gpt-4o), prompts and scales, plus bleu_official/rougeL_official (see the README's Protocol). Its judge "
    "prompts are read from your clone of the official repository, named by ECVA_OFFICIAL_REPO.",
)
@common(data_option, db_option, json_option)
def score(
    file: Path,
    model: str,
    task: str | None,
    probe: str | None,
    judge: bool | None,
    metrics: tuple[str, ...],
    protocol: str,
    data_path: Path | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Validate, store and score a submission FILE (JSON list, JSON Lines or CSV)."""
    from ecva_core.dataset import load_dataset
    from ecva_core.errors import SubmissionError
    from ecva_core.metrics.text import TEXT_METRICS
    from ecva_core.results.scoring import score_submission
    from ecva_core.schema import Task

    try:
        task_value = Task.parse(task) if task else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--task") from None
    unknown = [m for m in metrics if m not in TEXT_METRICS]
    if unknown:
        raise click.BadParameter(
            f"unknown text metric(s) {', '.join(unknown)}; known: {', '.join(TEXT_METRICS)}", param_hint="--metric"
        )
    dataset = load_dataset(data_path)
    db = _open_db(db_path)
    with _Bar() as bar:
        try:
            summary = score_submission(
                file,
                model,
                dataset,
                db,
                task=task_value,
                probe=probe,
                judge=judge,
                progress=bar,
                metrics=list(metrics) or None,
                notify=log,
                protocol=protocol,
            )
        except SubmissionError:
            bar.progress.stop()
            raise
    from ecva_core.views import warm_after_write

    warm_after_write(db, dataset, model)
    if as_json:
        emit_json(summary)
        return
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    cov = summary["coverage"]
    judge = summary["judge"]
    if not summary["resubmitted"]:
        stored = ""
    elif judge.get("rejudged"):
        stored = f" (already stored: predictions unchanged, re-judged with {judge['model']})"
    else:
        stored = " (already stored: nothing re-scored)"
    log(f"stored as submission {summary['submission_id']} of model {summary['model']!r}{stored}")
    click.echo(
        f"Coverage: {cov['matched']} of {cov['expected']} questions answered, {cov['missing']} missing, "
        f"{cov['extra']} extra, {cov['failed']} failed (ERROR {cov['error_rows']}, empty {cov['empty_rows']})"
        + (f", {cov['probe_rows']} probe answers" if cov.get("probe_rows") else "")
    )
    if summary.get("warnings"):
        click.echo(f"Warnings: {summary['warnings']} (first: {summary['problems'][0]['problem']})")
    judge_status = judge["status"] + (f" ({judge['model']})" if judge.get("model") else "")
    if summary.get("note"):
        click.echo(f"Scores: {summary['note']}")
        click.echo(f"Judge: {judge_status}")
        return
    measures = list(summary["measures"])
    if judge["status"] != "ok":
        measures += [m for m in JUDGE_ROWS if m not in measures]
    blocks = [*summary["tasks"].items(), ("overall", summary["overall"])]
    header = ["measure", *[name for name, _ in blocks]]
    rows = [
        ["questions", *[str(b.get("n_questions", 0)) for _, b in blocks]],
        ["failed scores", *[str(b.get("n_failed", 0)) for _, b in blocks]],
    ]
    for measure in measures:
        if measure in JUDGE_ROWS and judge["status"] != "ok":
            short = judge["status"].split(":", 1)[0]  # e.g. "judge unreachable"; the reason is printed below
            cells = [short if name in SCORED or name == "overall" else "-" for name, _ in blocks]
            rows.append([measure, *cells])
        else:
            rows.append([measure, *[_fmt(b, measure) for _, b in blocks]])
    _print_table("Scores: mean [95% CI, resampling videos]; failures count 0", header, rows)
    click.echo(summary["anomeval_label"])
    click.echo(f"Judge: {judge_status}; protocol: {summary['protocol']}")


@click.command()
@click.option(
    "--by",
    "by",
    type=click.Choice(["model", "task", "category"]),
    default="model",
    show_default=True,
    help="One row per model, per (model, task) or per (model, major category); a model's rows stay "
    "together, in the order of the models' rank.",
)
@click.option(
    "--variant",
    type=click.Choice(["all", "valid"]),
    default="all",
    show_default=True,
    help="all: failures count 0; valid: failures excluded.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="More measure(s) to show, each as mean [95% CI] (e.g. judge_logic, bleu_official, mIoU).",
)
@click.option(
    "--hallucination",
    type=click.Choice(HALLUCINATION_READINGS),
    default=HALLUCINATION_READINGS[0],
    show_default=True,
    help="What feeds the hallucination pillar: abstention on the probe answer (the "
    "official code) or the probe vs normal answer pair (the paper's figure).",
)
@click.option(
    "--judge-model",
    default=None,
    help="Judge metrics from this judge model only (default: each answer's latest judge run).",
)
@common(data_option, db_option, json_option)
def leaderboard(
    by: str,
    variant: str,
    metrics: tuple[str, ...],
    hallucination: str,
    judge_model: str | None,
    data_path: Path | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Models ranked by AnomEval (complete: all three pillars), else the semantic score, with 95% CIs."""
    from ecva_core.views.leaderboard import leaderboard_rows

    payload = leaderboard_rows(
        _open_db(db_path),
        by=by,
        variant=variant,
        metrics=list(metrics) or None,
        data_path=data_path,
        judge_model=judge_model,
        hallucination=hallucination,
    )
    if as_json:
        emit_json(payload)
        return
    unmeasured = payload["unmeasured"]
    if not payload["rows"]:
        if not unmeasured:
            click.echo("No results yet: score a submission with `ecva score FILE --model NAME`.")
            return
        _print_unmeasured(unmeasured)
        for note in payload.get("notes", []):
            click.echo(note)
        return
    header, rows = leaderboard_table(payload, list(metrics))
    _print_table(
        f"Leaderboard by {by} ({variant}; 95% CI resampling videos)",
        header,
        rows,
        width=None if metrics else LEADERBOARD_WIDTH,
    )
    if any(r.get("anomeval") is not None or r.get("anomeval_partial") is not None for r in payload["rows"]):
        _say(
            "AnomEval: complete (all three pillars), the only one ranked; partial: the pillars measured "
            "(B basic reasoning, C consistency, H hallucination), ranked after every complete one."
        )
        _say(f"Hallucination pillar: {READING_LABELS[payload['hallucination_reading']]}.")
        _say(payload["anomeval_label"])
    _say(PROTOCOL_NOTE)
    _print_unmeasured(unmeasured)
    for note in payload.get("notes", []):
        _say(note)


def _say(text: str) -> None:
    """A note under the leaderboard, folded to the table's width."""
    import textwrap

    click.echo(textwrap.fill(text, LEADERBOARD_WIDTH))


def leaderboard_table(payload: dict[str, Any], extra: list[str]) -> tuple[list[str], list[list[str]]]:
    """The compact leaderboard: rank, model, AnomEval with its CI, the partial AnomEval with its pillars,
    plain means of the headline text metrics, questions and protocol; ``extra`` measures with CIs after."""
    rows_in = payload["rows"]
    keys = {"model": [], "task": ["task"], "category": ["category_name"]}[payload["by"]]
    judged = any(r.get("anomeval") is not None or r.get("anomeval_partial") is not None for r in rows_in)
    compact = [m for m in COMPACT_TEXT_METRICS if any(r.get(m) is not None for r in rows_in) and m not in extra]
    header = ["#", "model", *keys]
    if judged:
        header += ["AnomEval [95% CI]", "partial (pillars)"]
    header += [*compact, *extra, "questions", "protocol"]
    ranks: dict[str, int] = {}
    rows = []
    for r in rows_in:
        rank = ranks.setdefault(r["model"], len(ranks) + 1)
        cells = [str(rank), r["model"], *[str(r[k]) for k in keys]]
        if judged:
            cells += [_fmt(r, "anomeval"), _partial(r)]
        cells += [_num(r.get(m)) for m in compact]
        cells += [_fmt(r, m) for m in extra]
        cells += [str(r["n_questions"]), payload["protocols"].get(r["model"], "-")]
        rows.append(cells)
    return header, rows


def _partial(row: dict[str, Any]) -> str:
    value = row.get("anomeval_partial")
    if value is None:
        return "-"
    pillars = "+".join(PILLAR_LETTERS[p] for p in str(row.get("anomeval_covers", "")).split("+") if p in PILLAR_LETTERS)
    return f"{value:.3f} ({pillars})"


def _print_unmeasured(unmeasured: list[dict[str, Any]]) -> None:
    """Models with answers but no leaderboard row, one line each with the reason."""
    for entry in unmeasured:
        answered = [f"{entry['answers']} answers"] if entry["answers"] else []
        if entry["probe_answers"]:
            answered.append(f"{entry['probe_answers']} probe answers")
        click.echo(f"{entry['model']}: {', '.join(answered)}; {entry['note']}")


@click.command()
@click.argument("model_a")
@click.argument("model_b")
@click.option("--metric", "metrics", multiple=True, help="Metric(s) to compare (default: headline metrics present).")
@click.option(
    "--hallucination",
    type=click.Choice(HALLUCINATION_READINGS),
    default=HALLUCINATION_READINGS[0],
    show_default=True,
    help="What feeds the hallucination pillar (see `ecva leaderboard --help`).",
)
@common(db_option, json_option)
def compare(
    model_a: str, model_b: str, metrics: tuple[str, ...], hallucination: str, db_path: Path | None, as_json: bool
) -> None:
    """Paired comparison of MODEL_A and MODEL_B on the questions both answered (A - B with a 95% CI)."""
    from ecva_core.views.compare import compare_models

    payload = compare_models(
        _open_db(db_path), model_a, model_b, metrics=list(metrics) or None, hallucination=hallucination
    )
    if as_json:
        emit_json(payload)
        return
    header = ["measure", "common questions", model_a, model_b, "difference (A - B) [95% CI]", "significant"]
    rows = []
    for measure, r in payload["measures"].items():
        diff = "-" if r.get("diff") is None else f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
        rows.append(
            [
                measure,
                str(r["n_questions"]),
                _num(r.get("mean_a")),
                _num(r.get("mean_b")),
                diff,
                "yes" if r.get("significant") else "no",
            ]
        )
    _print_table(f"{model_a} vs {model_b} (paired by question, {payload['variant']})", header, rows)
    for model, pillars in payload["missing_pillars"].items():
        click.echo(
            f"{model}: {', '.join(pillars)} not measured; AnomEval is not compared, the pillars are compared one by one"
        )
    protocols = payload["protocols"]
    if protocols:
        click.echo("Judge protocol: " + ", ".join(f"{m} {p}" for m, p in protocols.items()))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@click.group()
def results() -> None:
    """Export, import or delete a model's full results (submissions, predictions, scores)."""


@results.command("export")
@click.argument("model")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default=None,
    help="Default: from the --out suffix, else json.",
)
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@common(db_option, json_option)
def export_cmd(model: str, fmt: str | None, out: Path, db_path: Path | None, as_json: bool) -> None:
    """Write MODEL's results to a JSON or CSV file (CSV cells are safe against formula injection)."""
    from ecva_core.results.export import export_model

    counts = export_model(_open_db(db_path), model, out, fmt)
    if as_json:
        emit_json(counts)
    else:
        click.echo(f"exported {counts['predictions']} answers and {counts['scores']} scores of {model!r} to {out}")


@results.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", default=None, help="Store under this name instead of the one in the file.")
@common(data_option, db_option, json_option)
def import_cmd(file: Path, model: str | None, data_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Load a file written by `ecva results export` (submissions already present are skipped).

    The model's leaderboard part is then cached for the explorer on the --data dataset, as `ecva score` does.
    """
    from functools import partial

    from ecva_core.dataset import load_dataset
    from ecva_core.results.export import import_results
    from ecva_core.views import warm_after_write

    db = _open_db(db_path)
    counts = import_results(db, file, model=model)
    warm_after_write(db, partial(load_dataset, data_path), counts["model"])
    if as_json:
        emit_json(counts)
    else:
        click.echo(
            f"imported {counts['predictions']} answers and {counts['scores']} scores as {counts['model']!r}"
            f" ({counts['skipped']} submission(s) already present)"
        )


@results.command("delete")
@click.argument("model")
@common(db_option, json_option)
def delete_cmd(model: str, db_path: Path | None, as_json: bool) -> None:
    """Remove MODEL with all its submissions, answers and scores (the judge cache is kept)."""
    from ecva_core.errors import ResultsError

    if not _open_db(db_path).delete_model(model):
        raise ResultsError(f"no model named {model!r}; see `ecva leaderboard --by model`")
    if as_json:
        emit_json({"deleted": model})
    else:
        click.echo(f"deleted {model!r}")
