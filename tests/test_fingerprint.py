"""`vtr.fingerprint`: one list of what changes results (`vtr/fingerprint.txt`), and everything derived
from it: the code version, the results folder's fingerprint, the book cache's inputs and the
publishing workflow's cache key."""
import importlib.util
from pathlib import Path

import pytest
import yaml

from vtr import fingerprint as fp
from vtr import paths

REPO = Path(fp.__file__).resolve().parent.parent


def _cache_script():
    spec = importlib.util.spec_from_file_location("cache_fingerprint", REPO / ".ci" / "cache_fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_entry_of_the_list_exists():
    missing = [e for e, _ in fp.read_list()
               if not ((paths.data_dir() / e[len("data/"):]) if e.startswith("data/") else REPO / e).exists()]
    assert missing == []


def test_a_line_without_a_known_kind_is_named(tmp_path):
    (tmp_path / "list.txt").write_text("# what changes results\nvtr/  results\nvtr/cli/  resluts\n")
    with pytest.raises(ValueError, match=r"list.txt:3: .*'vtr/cli/  resluts'"):
        fp.read_list(tmp_path / "list.txt")


@pytest.mark.parametrize("name, kind", [
    ("vtr/engine/core.py", "results"), ("vtr/chapters/runs.py", "results"),
    ("vtr/experiments/new_module.py", "results"), ("vtr/benchmarks/fixtures.py", "results"),
    ("vtr/some_new_package/data.json", "results"), ("vtr/cli/bench.py", "none"),
    ("vtr/integrations/lmms/model.py", "none"), ("vtr/chapters/figures.py", "pages"),
    ("requirements.lock", "results"), ("pyproject.toml", "pages"), ("README.md", None),
])
def test_the_longest_entry_decides_and_new_files_under_vtr_change_results(name, kind):
    assert fp.kind_of(name, fp.read_list()) == kind


LIST = "vtr/  results\nvtr/cli/  none\nvtr/chapters/figures.py  pages\nrequirements.lock  results\n" \
       "data/testbed/model/model.safetensors  results\n"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A repository with the list above, a data folder elsewhere, and fresh digests on each call."""
    root, data = tmp_path / "repo", tmp_path / "data"
    for name, text in {"vtr/plan.py": "a = 1\n", "vtr/engine/core.py": "b = 2\n", "vtr/cli/main.py": "c\n",
                       "vtr/chapters/figures.py": "d\n", "requirements.lock": "torch==1\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (data / "testbed" / "model").mkdir(parents=True)
    (data / "testbed" / "model" / "model.safetensors").write_bytes(b"w1")
    (root / "vtr" / "fingerprint.txt").write_text(LIST)
    monkeypatch.setattr(fp, "ROOT", root)
    monkeypatch.setattr(fp, "LIST", root / "vtr" / "fingerprint.txt")
    monkeypatch.setattr(paths, "REPO", root)
    monkeypatch.setenv("VTR_DATA", str(data))

    def digests():
        fp.code_version.cache_clear()
        paths.inputs_fingerprint.cache_clear()
        return fp.code_version(), paths.inputs_fingerprint()

    yield root, data, digests
    fp.code_version.cache_clear()
    paths.inputs_fingerprint.cache_clear()


def test_code_and_results_fingerprints_follow_the_list(tree):
    root, data, digests = tree
    code, results = digests()
    (root / "vtr" / "engine" / "core.py").write_text("b = 3\n")
    assert digests()[0] != code and digests()[1] != results
    code, results = digests()
    (root / "vtr" / "new").mkdir()
    (root / "vtr" / "new" / "thing.py").write_text("e = 1\n")  # covered by default
    assert digests()[0] != code and digests()[1] != results
    code, results = digests()
    for name in ("vtr/cli/main.py", "vtr/chapters/figures.py"):  # none, pages
        (root / name).write_text("changed\n")
    assert digests() == (code, results)
    (root / "requirements.lock").write_text("torch==2\n")  # results, not code
    assert digests()[0] == code and digests()[1] != results
    _, results = digests()
    (data / "testbed" / "model" / "model.safetensors").write_bytes(b"w2")  # read from VTR_DATA
    assert digests()[0] == code and digests()[1] != results


def test_the_book_cache_covers_what_the_list_marks_as_changing_results_or_pages():
    book = {p.relative_to(REPO).as_posix() for p in _cache_script().input_files()}
    assert book == {name for name, _ in fp.listed_files(("results", "pages"), REPO, REPO / "data")}
    assert {"pyproject.toml", "vtr/chapters/figures.py", "requirements.lock"} <= book
    assert not any(name.startswith(("vtr/cli/", "vtr/integrations/")) for name in book)


def test_the_workflow_cache_key_is_the_book_caches_fingerprint():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    by_id = {s["id"]: s for s in steps if "id" in s}
    key = cache["with"]["key"]
    ids = [i for i in by_id if f"steps.{i}.outputs." in key]
    assert len(ids) == 1 and ".ci/cache_fingerprint.py hash" in by_id[ids[0]]["run"]
    assert steps.index(by_id[ids[0]]) < steps.index(cache)


def test_check_names_every_differing_field():
    with pytest.raises(fp.FingerprintError,
                       match=r"other limit, model \(limit: 4 there, 8 now; model: 'a' there"):
        fp.check({"model": "a", "limit": 4, "seed": 0}, {"model": "b", "limit": 8, "seed": 0}, "run.jsonl")
