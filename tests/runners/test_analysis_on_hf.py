"""The analyses the book runs on the testbed (`vtr.analysis`) run unchanged on a real checkpoint's
runner: a tiny random-init LLaVA saved as a HuggingFace folder and loaded with `load_runner`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vtr import analysis, tiny
from vtr.benchmarks import get_reader
from vtr.runners.hf import load_runner
from vtr.benchmarks.fixtures import write_pope
from tests.runners.test_hf_runner import make_checkpoint


@pytest.fixture(scope="module")
def runner_and_split(tmp_path_factory):
    folder = make_checkpoint(tmp_path_factory.mktemp("tiny-llava-hf"))
    runner = load_runner(folder, dtype="float32", device="cpu", benchmark="pope", max_new_tokens=2)
    split = get_reader("pope")(write_pope(tmp_path_factory.mktemp("pope")), limit=2)  # 6 samples
    return runner, split


def test_logits_are_the_last_position_of_a_plain_forward(runner_and_split):
    runner, split = runner_and_split
    inputs = runner.inputs(split.samples[:3], split)
    with torch.inference_mode():
        full = runner.model(**inputs).logits[:, -1]
    assert torch.allclose(runner.logits(inputs), full, atol=1e-5)


def test_layer_scores_on_an_hf_runner(runner_and_split):
    runner, split = runner_and_split
    s = analysis.layer_scores(runner, split, "last", batch_size=4, progress=False)
    L = runner.model.config.text_config.num_hidden_layers
    assert s.shape == (len(split), L, runner.n_vision)
    # the query's attention on the vision tokens: a part of one softmax row per sample and layer
    assert np.all(s >= 0) and np.all(s.sum(2) > 0) and np.all(s.sum(2) <= 1 + 1e-4)
    taus = analysis.kendall_per_sample(s)
    assert taus.shape == (len(split), L, L) and np.allclose(np.diagonal(taus, axis1=1, axis2=2), 1.0)


def test_attention_mass_and_cls_curves_on_an_hf_runner(runner_and_split):
    runner, split = runner_and_split
    rows = analysis.attention_mass(runner, split, batch_size=4, progress=False)
    assert [r["layer"] for r in rows] == list(range(runner.model.config.text_config.num_hidden_layers))
    assert all(0 <= r["text_to_image"] <= 1 for r in rows)
    curves = analysis.cls_curves(runner, split, batch_size=4)
    assert curves.shape == (len(split), tiny.n_image_tokens(runner.model, "llava"))
