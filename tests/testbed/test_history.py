"""Shipped checkpoints read back from git history, and their layers' rank consistency, checked
against scipy's Kendall tau on the same scores."""
import json
import subprocess

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from vtr import analysis
from vtr.testbed import history
from vtr.testbed.batches import heldout_split
from vtr.testbed.model import TestbedSpec, WordTokenizer, build_model, load_testbed, save_testbed
from vtr.testbed.runner import TestbedRunner

SPEC = TestbedSpec(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=3,
                   text_heads=2, text_intermediate=64)


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                   check=True, capture_output=True)


def _commit_checkpoint(repo, seed: int, accuracy: float, steps: int) -> str:
    """Commit a tiny testbed and a training log under `history.CHECKPOINT`; return the commit."""
    folder = repo / history.CHECKPOINT
    save_testbed(build_model(SPEC, seed=seed), WordTokenizer(), SPEC, folder, extra={"seed": seed})
    log = [{"stage": 1, "step": 0, "loss": 1.0},
           {"stage": 2, "step": steps - 1, "heldout": {"overall": accuracy, "families": {}}},
           {"stage": 2, "step": steps - 1, "loss": 0.5}]
    (folder / "training_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"checkpoint {seed}")
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    _git(root, "init", "-q")
    commits = [_commit_checkpoint(root, seed=1, accuracy=0.25, steps=40),
               _commit_checkpoint(root, seed=2, accuracy=0.5, steps=60)]
    return root, commits


def test_checkpoint_at_writes_that_commits_files_not_the_working_trees(repo, tmp_path):
    root, (first, second) = repo
    out = history.checkpoint_at(first, tmp_path / "first", root)
    assert sorted(p.name for p in out.iterdir()) == sorted(history.FILES)
    assert json.loads((out / "training.json").read_text()) == {"seed": 1}
    current = root / history.CHECKPOINT / "model.safetensors"
    assert (out / "model.safetensors").read_bytes() != current.read_bytes()
    again = history.checkpoint_at(second, tmp_path / "second", root)
    assert (again / "model.safetensors").read_bytes() == current.read_bytes()


def _scipy_tau(scores, i, j):
    taus = [kendalltau(s[i], s[j]).statistic for s in scores]
    return float(np.mean([0.0 if np.isnan(t) else t for t in taus]))


@torch.no_grad()
def test_layer_tau_is_scipys_kendall_averaged_over_questions_then_layer_pairs_from_1():
    runner, split = TestbedRunner(build_model(SPEC, seed=3).eval()), heldout_split(5)
    got = history.layer_tau(runner, split)
    for q in history.QUERIES:
        scores = analysis.layer_scores(runner, split, q, progress=False)
        L = scores.shape[1]
        pairs = [_scipy_tau(scores, i, j) for i in range(1, L) for j in range(i + 1, L)]
        assert got[q] == pytest.approx(np.mean(pairs), abs=1e-12)
        assert got[q + "_layer0"] == pytest.approx(np.mean([_scipy_tau(scores, 0, j) for j in range(1, L)]),
                                                   abs=1e-12)


def test_tau_by_checkpoint_reads_each_commits_model_and_log(repo, tmp_path):
    root, commits = repo
    labels = {commits[0]: "first", commits[1]: "second"}
    got = history.tau_by_checkpoint(3, labels, root)
    assert got["n"] == 3 and got["split"] == "val" and list(got["checkpoints"]) == ["first", "second"]
    split = history.load("val").subset(3)
    for (commit, label), (accuracy, steps) in zip(labels.items(), [(0.25, 40), (0.5, 60)]):
        model, _ = load_testbed(history.checkpoint_at(commit, tmp_path / commit, root))
        row = got["checkpoints"][label]
        assert row == {**history.layer_tau(TestbedRunner(model), split), "commit": commit, "steps": steps,
                       "heldout": accuracy}


def test_the_saved_result_has_the_fields_tau_by_checkpoint_writes():
    saved = json.loads(history.saved_path().read_text())
    assert {row["commit"]: label for label, row in saved["checkpoints"].items()} == history.SHIPPED
    fields = {*history.QUERIES, *(q + "_layer0" for q in history.QUERIES), "commit", "steps", "heldout"}
    assert all(set(row) == fields for row in saved["checkpoints"].values())
