"""The shipped checkpoint loads, is the LLaVA class with SDPA, and reproduces its recorded accuracy."""
import json

import pytest

from vtr.paths import testbed_model_dir

pytestmark = pytest.mark.skipif(not (testbed_model_dir() / "model.safetensors").exists(),
                                reason="no trained testbed checkpoint in data/testbed/model")


def test_checkpoint_loads_and_reproduces_recorded_accuracy():
    from transformers import LlavaForConditionalGeneration

    from vtr.evaluate import TestbedRunner, evaluate
    from vtr.testbed.benchmark import load
    from vtr.testbed.model import load_testbed

    model, _ = load_testbed()
    assert isinstance(model, LlavaForConditionalGeneration)
    assert model.config.text_config._attn_implementation == "sdpa"
    assert model.config.text_config.num_hidden_layers >= 8
    recorded = json.loads((testbed_model_dir() / "eval_slice.json").read_text())
    split = load("test").subset(recorded["n"])
    got = evaluate(TestbedRunner(model), split, progress=False)["metrics"]
    assert got["overall"] == pytest.approx(recorded["overall"], abs=1e-9)
    assert got["families"] == pytest.approx(recorded["families"], abs=1e-9)


def test_sha256_matches():
    import hashlib

    expected = (testbed_model_dir() / "model.safetensors.sha256").read_text().split()[0]
    h = hashlib.sha256((testbed_model_dir() / "model.safetensors").read_bytes()).hexdigest()
    assert h == expected
