"""`vtr.journal`: whole-line appends, a torn last line dropped and cut, corruption elsewhere refused,
atomic replacement."""
import json
import os

import pytest

from vtr import journal
from vtr.errors import InputError

RECORDS = [{"id": 1, "answer": "red"}, {"id": 2, "answer": "blue", "nested": {"ok": [1, 2]}}]


def test_append_then_read_round_trips_and_a_missing_file_is_empty(tmp_path):
    path = tmp_path / "sub" / "run.jsonl"
    assert journal.read(path) == []
    journal.append(path, RECORDS[:1])
    journal.append(path, RECORDS[1:])
    assert journal.read(path) == RECORDS
    assert path.read_text() == "".join(json.dumps(r) + "\n" for r in RECORDS)


def test_every_append_is_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    journal.append(tmp_path / "run.jsonl", RECORDS)
    journal.append(tmp_path / "run.jsonl", RECORDS)
    assert len(synced) == 2


def test_a_torn_last_line_is_dropped_with_a_warning_and_cut_from_the_file(tmp_path):
    path = tmp_path / "run.jsonl"
    journal.append(path, RECORDS)
    with open(path, "ab") as f:
        f.write(b'{"id": 3, "ans')
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert journal.read(path) == RECORDS
    journal.append(path, [{"id": 3}])
    assert journal.read(path) == [*RECORDS, {"id": 3}]


def test_a_whole_last_record_without_its_newline_is_kept_and_the_newline_added(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(RECORDS[1]))
    assert journal.read(path) == RECORDS
    assert path.read_text().endswith("\n")
    journal.append(path, [{"id": 3}])
    assert journal.read(path) == [*RECORDS, {"id": 3}]


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text("\n" + json.dumps(RECORDS[0]) + "\n\n" + json.dumps(RECORDS[1]) + "\n")
    assert journal.read(path) == RECORDS


def test_a_bad_line_before_the_last_is_refused_naming_it(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\nnot json\n" + json.dumps(RECORDS[1]) + "\n")
    with pytest.raises(journal.JournalError, match="line 2 is not valid JSON") as err:
        journal.read(path)
    assert isinstance(err.value, InputError)
    assert "not json" in path.read_text()  # left as it was: only a torn last line is cut


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "plan.json"
    journal.write_atomic(path, "old")
    journal.write_atomic(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in path.parent.iterdir()) == ["plan.json"]


def test_write_atomic_interrupted_before_the_rename_keeps_the_old_text(tmp_path, monkeypatch):
    path = tmp_path / "plan.json"
    journal.write_atomic(path, "old")

    def killed(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        journal.write_atomic(path, "new")
    assert path.read_text() == "old"
