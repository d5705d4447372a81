"""The shipped checkpoints load, are the LLaVA class with SDPA, and reproduce their recorded accuracy;
the deep testbed shares the 8-layer testbed's vision tower (stage 0 reused, not retrained)."""
import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from vtr import paths
from vtr.paths import TESTBEDS


@pytest.mark.parametrize("name", list(TESTBEDS))
def test_checkpoint_loads_and_reproduces_recorded_accuracy(name):
    from transformers import LlavaForConditionalGeneration

    from vtr.evaluation import evaluate
    from vtr.testbed.runner import TestbedRunner
    from vtr.testbed.data import load
    from vtr.testbed.model import load_testbed

    folder = paths.testbed_model_dir(name)
    model, _ = load_testbed(folder)
    assert isinstance(model, LlavaForConditionalGeneration)
    assert model.config.text_config._attn_implementation == "sdpa"
    spec = json.loads((folder / "testbed_spec.json").read_text())
    assert model.config.text_config.num_hidden_layers == spec["text_layers"]
    recorded = json.loads((folder / "eval_slice.json").read_text())
    split = load("test").subset(recorded["n"])
    got = evaluate(TestbedRunner(model, name), split, progress=False)["metrics"]
    assert got["overall"] == pytest.approx(recorded["overall"], abs=1e-9)
    assert got["families"] == pytest.approx(recorded["families"], abs=1e-9)


@pytest.mark.parametrize("name", list(TESTBEDS))
def test_sha256_matches(name):
    folder = paths.testbed_model_dir(name)
    expected = (folder / "model.safetensors.sha256").read_text().split()[0]
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == expected


def test_the_deep_testbed_is_deeper_and_reuses_the_vision_tower():
    shallow, deep = (load_file(str(paths.testbed_model_dir(n) / "model.safetensors"))
                     for n in ("testbed", "testbed-deep"))
    tower = sorted(k for k in shallow if k.startswith("vision_tower."))
    assert tower and tower == sorted(k for k in deep if k.startswith("vision_tower."))
    assert all(torch.equal(shallow[k], deep[k]) for k in tower)
    configs = {n: json.loads((paths.testbed_model_dir(n) / "config.json").read_text())
               for n in ("testbed", "testbed-deep")}
    layers = {n: c["text_config"]["num_hidden_layers"] for n, c in configs.items()}
    assert layers["testbed-deep"] >= 2 * layers["testbed"]
