"""`vtr.runners.hf`: a real HuggingFace checkpoint folder, end to end, offline.

A tiny random-init LLaVA (`vtr.tiny.build("llava")`) plus a processor made without any download
(`vtr.tiny.processor`: CLIP image processing at the tiny image size, a word-level tokenizer whose
`<image>` id is the model's image token, a LLaVA-style chat template) are saved with
`save_pretrained` (`vtr.tiny.save_checkpoint`), then the
CLI evaluates the folder on the POPE fixture under FastV. `make_checkpoint` is shared with
tests/test_distributed.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vtr import tiny

from vtr.benchmarks.fixtures import write_pope

VTR = Path(sys.executable).with_name("vtr")
def make_checkpoint(folder: Path) -> Path:
    """Save the tiny LLaVA + its processor as a HuggingFace checkpoint folder."""
    return tiny.save_checkpoint("llava", folder)


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run([str(VTR), *args], capture_output=True, text=True, timeout=timeout, env=full)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("tiny-llava-hf"))


@pytest.fixture(scope="module")
def pope(tmp_path_factory) -> Path:
    return write_pope(tmp_path_factory.mktemp("pope"))


def test_load_runner_and_generate_under_pruning(checkpoint, pope):
    from vtr import methods
    from vtr.benchmarks import get_reader
    from vtr.engine import prune
    from vtr.runners.hf import HFRunner, load_runner

    runner = load_runner(checkpoint, dtype="float32", device="cpu", benchmark="pope", max_new_tokens=3)
    assert isinstance(runner, HFRunner) and runner.name == checkpoint.name
    assert runner.model.config._attn_implementation == "sdpa"
    assert runner.n_vision == tiny.n_image_tokens(runner.model, "llava") == 16
    split = get_reader("pope")(pope, limit=2)  # 2 per split file -> 6 samples
    prompt = runner.prompt(split.samples[0].question)
    assert prompt.startswith("USER: <image>\n") and prompt.endswith("ASSISTANT:")
    inputs = runner.inputs(split.samples[:3], split)
    ids = inputs["input_ids"]
    assert runner.last_vision_counts == [16, 16, 16]
    assert bool((ids[:, -1] != tiny.PAD).all())  # left padding: every prompt ends at the last column
    assert runner.n_text(split) == int((ids[0] != tiny.IMAGE_TOKEN).sum())
    info = methods.model_info(runner.model, runner.n_vision, runner.n_text(split))
    policy = methods.get("fastv")(info, budget=0.5)
    with prune(runner.model, policy) as session:
        preds = runner.predict(inputs)
    assert len(preds) == 3 and all(isinstance(p, str) for p in preds)
    plan = list(policy.plan.keep)  # FastV at keep budget 0.5: all 16 in layer 0, then a constant count
    assert plan[0] == 16 and max(plan[1:]) < 16 and sum(plan) / (16 * len(plan)) <= 0.5
    assert session.last_stats["vision_counts"].tolist() == [plan] * 3
    metrics = runner.score(split.samples[:3], preds)
    assert metrics["n"] == 3 and 0.0 <= metrics["accuracy"] <= 1.0
    # pruning changes the computation, not the interface: the unpruned answers are strings too
    with torch.inference_mode():
        assert len(runner.predict(inputs)) == 3


def test_cli_eval_checkpoint_on_pope(checkpoint, pope, tmp_path):
    out = run_cli("eval", "--model", str(checkpoint), "--benchmark", "pope", "--data", str(pope), "--method",
                  "fastv", "--budget", "0.5", "--limit", "4", "--max-new-tokens", "4", "--json",
                  env={"VTR_RESULTS": str(tmp_path / "results")})
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["method"] == "fastv" and rec["model"] == checkpoint.name and rec["benchmark"] == "pope"
    assert rec["n"] == 12  # --limit applies per POPE split file
    m = rec["metrics"]
    assert set(m) >= {"random", "popular", "adversarial", "f1", "accuracy", "n"}
    assert rec["overall"] == m["accuracy"] and 0.0 <= m["accuracy"] <= 1.0
    assert rec["keep_rate"] == pytest.approx(0.5, abs=0.02)
    assert 0.0 < rec["flops_ratio"] < 1.0 and rec["speedup"] > 0
    runs = list((tmp_path / "results" / "runs").glob(f"{checkpoint.name}_pope_*.jsonl"))
    lines = runs[0].read_text().splitlines() if len(runs) == 1 else []
    assert len(runs) == 1 and json.loads(lines[0])["type"] == "header"
    assert len(lines) == 1 + 12  # header + samples


def test_missing_weights(checkpoint, tmp_path):
    import shutil

    from vtr.runners.hf import load_runner
    from vtr.models import load

    bare = tmp_path / "no-weights"
    shutil.copytree(checkpoint, bare, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    with pytest.raises(FileNotFoundError, match=r"no-weights.*no model weights.*\.safetensors"):
        load_runner(bare)
    with pytest.raises(FileNotFoundError, match="no-weights"):
        load(str(bare))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(str(tmp_path / "nowhere"))


def test_unsupported_architecture(checkpoint, tmp_path):
    import shutil

    from vtr.engine import UnsupportedArchitecture
    from vtr.runners.hf import load_runner

    other = tmp_path / "llava-original"
    shutil.copytree(checkpoint, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["architectures"] = ["LlavaLlamaForCausalLM"]
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitecture, match="llava-hf"):
        load_runner(other)
