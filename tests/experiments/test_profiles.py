"""Profiles (`vtr.experiments.profiles`): the YAML file of the paper profile, refused in one line when
a path is missing or when its search / training questions are among the reported ones."""
from __future__ import annotations

from pathlib import Path

import pytest

from vtr.benchmarks.fixtures import write_gqa, write_pope
from vtr.experiments import profiles


@pytest.fixture
def folders(tmp_path) -> dict[str, Path]:
    out = {}
    for name, first in (("pope", 1), ("pope-search", 1001), ("pope-train", 5001)):
        (tmp_path / name).mkdir()
        out[name] = write_pope(tmp_path / name, first_id=first)
    (tmp_path / "model").mkdir()  # a folder is enough here: the profile checks paths, not weights
    (tmp_path / "gqa").mkdir()
    out["gqa"] = write_gqa(tmp_path / "gqa")
    return out


def write(tmp_path: Path, search: str = "pope-search", train: str = "pope-train", extra: str = "") -> Path:
    path = tmp_path / "paper.yaml"
    path.write_text(f"models:\n  tiny: {{path: model, dtype: float32, device: cpu}}\n"
                    f"benchmarks:\n  pope: pope\n  gqa: gqa\n"
                    f"search: {{benchmark: pope, path: {search}, seed: 3}}\n"
                    f"train: {{benchmark: pope, path: {train}}}\n{extra}")
    return path


def test_the_default_profile_is_the_testbed(monkeypatch):
    monkeypatch.delenv("VTR_PROFILE", raising=False)
    prof = profiles.current()
    assert prof.name == "testbed" and set(prof.models) == {"testbed", "testbed-deep"}


def test_a_paper_profile_reads_models_benchmarks_questions_and_sizes(tmp_path, folders, monkeypatch):
    path = write(tmp_path, extra="sizes:\n  test: 5\n")
    monkeypatch.setenv("VTR_PROFILE", "paper")
    monkeypatch.setenv("VTR_PROFILE_FILE", str(path))
    prof = profiles.current()
    assert prof.models["tiny"].path == tmp_path / "model" and prof.models["tiny"].dtype == "float32"
    assert list(prof.benchmarks) == ["gqa", "pope"]  # the papers' column order, not the file's
    assert prof.search.seed == 3 and prof.train.seed == 0 and prof.sizes == {"test": 5}
    from vtr.experiments.sizes import size

    assert size("test") == 5
    # a seeded slice: the same questions for the same seed, others for another seed
    a, b = prof.search.read(6), prof.search.read(6)
    assert [s.id for s in a.samples] == [s.id for s in b.samples] and len(a) == 6
    other = profiles.Questions("pope", prof.search.path, seed=4).read(6)
    assert [s.id for s in other.samples] != [s.id for s in a.samples]
    cmd = prof.command("tiny", "pope", "fastv", 0.5, nproc=2)
    assert cmd.startswith("torchrun --standalone --nproc_per_node=2 -m vtr.cli eval --model ")
    assert f"--data {tmp_path / 'pope'}" in cmd and "--budget 0.5" in cmd


def test_search_questions_among_the_test_questions_are_refused(tmp_path, folders):
    with pytest.raises(profiles.ProfileError, match=r"search questions of pope .* share 18 ids") as err:
        profiles.load(write(tmp_path, search="pope"))
    assert "\n" not in str(err.value)
    with pytest.raises(profiles.ProfileError, match=r"train questions of pope"):
        profiles.load(write(tmp_path, train="pope"))


def test_a_missing_folder_is_named_in_one_line(tmp_path, folders):
    path = write(tmp_path)
    text = path.read_text().replace("path: model", "path: nowhere")
    path.write_text(text.replace("gqa: gqa", "gqa: no-gqa"))
    with pytest.raises(profiles.ProfileError, match=r"model tiny: .*nowhere; benchmark gqa: .*no-gqa") as err:
        profiles.load(path)
    assert "\n" not in str(err.value)
    assert len(profiles.load(path, check=False).missing()) == 2


@pytest.mark.parametrize("text, message", [
    ("models: {}\nbenchmarks:\n  coco: x\n", "unknown benchmark 'coco'"),
    ("models: {}\nsizes:\n  tests: 3\n", r"unknown sizes \['tests'\]"),
    ("models: {}\nsearch: {benchmark: pope}\n", "'search' needs benchmark, path"),
    ("models: {}\nsearch: {benchmark: pope, path: x, seed: one}\n", "search seed 'one' must be an integer"),
    ("models: {}\nbenchmarks: {}\nsearch: null\ntrain: null\n", "needs a 'search' entry"),
    ("modles: {}\n", r"unknown keys \['modles'\]"),
    ("models: [\n", "not valid YAML"),
])
def test_malformed_profiles_are_one_line(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(profiles.ProfileError, match=message) as err:
        profiles.load(path)
    assert "\n" not in str(err.value)


def test_an_unknown_profile_name_is_refused(monkeypatch):
    monkeypatch.setenv("VTR_PROFILE", "huge")
    with pytest.raises(profiles.ProfileError, match="VTR_PROFILE='huge'"):
        profiles.name()
    monkeypatch.setenv("VTR_PROFILE", "paper")
    monkeypatch.delenv("VTR_PROFILE_FILE", raising=False)
    with pytest.raises(profiles.ProfileError, match="VTR_PROFILE_FILE"):
        profiles.current()
