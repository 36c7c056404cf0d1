"""The library parts the explorer only wraps: the parsed dataset kept on disk, the demo's first scoring."""

from __future__ import annotations

import shutil
from pathlib import Path

from ecva_core.dataset import cache as dataset_cache
from ecva_core.dataset import load_dataset
from ecva_core.results.db import ResultsDB
from ecva_core.results.demo_scores import score_demo_submissions
from tests.submissions.tiny import write_tiny_annotations


def test_a_parsed_dataset_is_reused_until_its_annotations_change(tmp_path: Path, monkeypatch) -> None:
    annotations = write_tiny_annotations(tmp_path / "tiny")
    cache_dir = tmp_path / "cache"
    first = dataset_cache.load_cached_dataset(annotations, tmp_path / "demo", cache_dir)
    assert dataset_cache.cache_file(annotations, tmp_path / "demo", cache_dir).is_file()

    def no_parse(path: Path | None = None):
        raise AssertionError("parsed again")

    monkeypatch.setattr(dataset_cache, "load_dataset", no_parse)
    again = dataset_cache.load_cached_dataset(annotations, tmp_path / "demo", cache_dir)
    assert again.records.keys() == first.records.keys() and again.fingerprint == first.fingerprint
    monkeypatch.setattr(dataset_cache, "load_dataset", load_dataset)
    text = annotations.read_text(encoding="utf-8")
    annotations.write_text(text + "\n", encoding="utf-8")  # an edit: another size, so parsed again
    edited = dataset_cache.load_cached_dataset(annotations, tmp_path / "demo", cache_dir)
    assert edited.fingerprint != first.fingerprint


def test_an_unreadable_cached_dataset_is_parsed_again_and_replaced(tmp_path: Path) -> None:
    annotations = write_tiny_annotations(tmp_path / "tiny")
    cached = dataset_cache.cache_file(annotations, tmp_path / "demo", tmp_path / "cache")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a pickle")
    ds = dataset_cache.load_cached_dataset(annotations, tmp_path / "demo", tmp_path / "cache")
    assert ds.records and cached.read_bytes() != b"not a pickle"


def test_the_demo_submissions_are_scored_once_into_an_empty_database(demo_dataset_dir: Path, tmp_path: Path) -> None:
    demo = load_dataset(demo_dataset_dir)
    db = ResultsDB(tmp_path / "r.db")
    names = score_demo_submissions(demo, db, metrics=["bleu1"])
    stems = sorted(p.stem for p in (demo_dataset_dir / "submissions").glob("*.json"))
    assert len(stems) >= 3 and names == stems
    assert [m["model"] for m in db.models()] == stems and all(m["predictions"] > 0 for m in db.models())
    assert score_demo_submissions(demo, db) == []  # a database in use is left alone
    real = tmp_path / "real"
    shutil.copytree(demo_dataset_dir, real, ignore=shutil.ignore_patterns("DEMO.txt", "*.mp4", "*.avi"))
    assert score_demo_submissions(load_dataset(real), ResultsDB(tmp_path / "empty.db")) == []  # not a demo
