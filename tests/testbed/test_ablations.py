"""The recipe variants' index names existing folders and logs, and the table reads their logs."""
from vtr.paths import data_dir
from vtr.testbed import ablations


def test_every_variant_has_its_folder_and_log():
    root = data_dir() / "testbed"
    for v in ablations.variants():
        assert (root / "ablations" / v["variant"]).is_dir() or v["log"].startswith("deep/"), v["variant"]
        assert v["log"] is None or (root / v["log"]).is_file(), v["log"]
    folders = {p.name for p in (root / "ablations").iterdir() if p.is_dir()}
    assert folders - {v["variant"] for v in ablations.variants()} <= {"stage0-reuse", "tau-by-checkpoint"}


def test_the_table_takes_the_last_held_out_evaluation_of_each_log():
    rows = {r["variant"]: r for r in ablations.table()}
    shipped = [r for r in (ablations.journal.read(data_dir() / "testbed" / "model" / "training_log.jsonl"))
               if "heldout" in r][-1]
    assert rows["captions-every4"]["held-out accuracy"] == shipped["heldout"]["overall"]
    assert rows["captions-every4"]["held-out step"] == shipped["step"]
    assert rows["question-first-normcap"]["held-out accuracy"] is None


def test_every_variant_keeps_its_notes_and_no_code():
    """data/ is what the package reads: the probes' scripts live in history, named by each note."""
    root = data_dir() / "testbed" / "ablations"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")) == []
    assert all((p / "NOTES.md").is_file() for p in root.iterdir() if p.is_dir())
