"""The one table of measures agrees with what the scorers produce and what the aggregate derives."""

from __future__ import annotations

import pandas as pd
import pytest

from ecva_core.metrics import auxiliary, measures
from ecva_core.metrics.aggregate import question_table
from ecva_core.metrics.judge import METRIC_NAMES
from ecva_core.metrics.measures import BY_NAME, MEASURES, Kind
from ecva_core.metrics.text import TEXT_METRICS
from ecva_core.schema import KEYFRAMES_REMOVED_PROBE


def test_every_metric_a_scorer_can_produce_is_in_the_table_as_a_stored_measure():
    produced = {*TEXT_METRICS, *METRIC_NAMES.values(), *auxiliary.CLASSIFICATION_METRICS, *auxiliary.TIMESTAMP_METRICS}
    assert produced - set(BY_NAME) == set()
    assert {m.name for m in MEASURES if m.stored} == produced


def test_names_and_labels_are_unique_and_every_judge_feeds_a_known_pillar():
    assert len(BY_NAME) == len(MEASURES)
    titles = [m.title for m in MEASURES]
    assert len(set(titles)) == len(titles)
    for m in MEASURES:
        assert m.low < m.high, m.name
        assert m.pillar is None or BY_NAME[m.pillar].kind is Kind.PILLAR, m.name
        assert (m.kind is Kind.JUDGE) == (m.pillar is not None), m.name
    assert sum(measures.PILLAR_WEIGHTS.values()) == pytest.approx(1.0)
    assert all(measures.pillar_inputs(p) for p in measures.PILLARS)


def test_the_probe_rule_sends_probe_answers_to_the_hallucination_verdicts_only():
    assert {"judge_hallucination", "judge_hallucination_pair"} == measures.PROBE_METRICS
    assert measures.counts_for("judge_hallucination", KEYFRAMES_REMOVED_PROBE)
    assert not measures.counts_for("judge_consistency", KEYFRAMES_REMOVED_PROBE)
    assert measures.counts_for("judge_consistency", None) and not measures.counts_for("judge_hallucination", "")


def test_the_aggregate_derives_exactly_the_measures_the_table_says_are_not_stored():
    rows = [
        ("m", "1", "Cause", "", "judge_consistency", 1.0),
        ("m", "1", "Cause", "", "judge_logic", 5.0),
        ("m", "1", "Cause", KEYFRAMES_REMOVED_PROBE, "judge_hallucination", 1.0),
        ("m", "1", "Timestamp", "", "tiou", 0.6),
    ]
    frame = pd.DataFrame(rows, columns=["model", "video_id", "task", "probe", "metric", "value"]).assign(status="ok")
    table = question_table(frame)
    derived = {m.name for m in MEASURES if m.kind in (Kind.PILLAR, Kind.DERIVED)}
    assert derived <= set(table.columns)
    assert "tiou" not in table.columns and set(measures.METRIC_ORDER) >= {"R@0.5", "mIoU"}
    assert table.loc[table["task"] == "Cause", "basic"].item() == 1.0  # logic 5 of 5, scaled by its range


def test_display_lists_keep_the_table_order_and_labels_fall_back_to_the_name():
    order = [m.name for m in MEASURES]
    for listed in (measures.METRIC_ORDER, measures.SUMMARY_ORDER, measures.NORMAL_JUDGE_METRICS):
        assert [order.index(n) for n in listed] == sorted(order.index(n) for n in listed)
    assert measures.PICK_ORDER[0] == "judge_consistency"
    assert set(measures.CHAT_TEXT_METRICS) <= set(TEXT_METRICS)
    assert measures.label("anomeval") == "AnomEval (reconstructed)" and measures.label("whatever") == "whatever"
    assert not measures.is_per_question_metric("basic") and measures.is_per_question_metric("bleu_official")
