"""Assisted decoding (`assistant_model=` a separate, unpruned model), batch of one. The main model's
first forward verifies the assistant's candidates appended to the prompt; every later one verifies
new candidates, after `cache.crop()` removed the rejected ones from every layer's end. Under
keep-all the output is the unpatched model's, bit for bit; pruned, it is plain pruned greedy
decoding (the prompt alone decides the selection, the candidates decode like generated tokens)."""
import pytest
import torch
from transformers import DynamicCache

from vtr import tiny
from vtr.engine import Policy

from .helpers import assert_close, assert_same, generate, half_from, setup

NEW = 8


def assistant(arch, same_weights: bool):
    """The main model's own weights (accepts many candidates under pruning), or with its output
    layer negated: it proposes the least likely token, so its first candidate is always rejected."""
    model = tiny.build(arch)
    if not same_weights:  # a new head: the old one may share its weights with the input embeddings
        head = model.get_output_embeddings()
        new = torch.nn.Linear(head.in_features, head.out_features, bias=False)
        new.weight = torch.nn.Parameter(-head.weight.detach().clone())
        model.set_output_embeddings(new)
    cfg = model.generation_config
    cfg.num_assistant_tokens, cfg.num_assistant_tokens_schedule = 3, "constant"
    cfg.assistant_confidence_threshold = 0.0
    return model


@pytest.fixture
def crops(monkeypatch):
    """Tokens removed by each cache.crop() of the run."""
    seen, original = [], DynamicCache.crop

    def spy(self, n):
        seen.append(-n)
        return original(self, n)
    monkeypatch.setattr(DynamicCache, "crop", spy)
    return seen


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
def test_keep_all_assisted_decoding_equals_the_unpatched_model(arch, crops):
    model, inputs, _, _ = setup(arch, batch=1)
    helper = assistant(arch, same_weights=False)
    ref = generate(model, inputs, assistant_model=helper, max_new_tokens=NEW)
    crops.clear()
    got = generate(model, inputs, Policy(), assistant_model=helper, max_new_tokens=NEW)
    assert_same(got, ref)
    assert any(crops)  # candidates were rejected


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("same_weights", [False, True])
@pytest.mark.parametrize("start", [0, 1])
def test_pruned_assisted_decoding_equals_pruned_greedy(arch, same_weights, start, crops):
    model, inputs, _, _ = setup(arch, batch=1)
    plain = generate(model, inputs, half_from(start, model, arch), max_new_tokens=NEW)
    crops.clear()
    got = generate(model, inputs, half_from(start, model, arch),
                   assistant_model=assistant(arch, same_weights), max_new_tokens=NEW)
    assert_close(got, plain)
    if same_weights:
        assert any(c < 3 for c in crops)  # some candidates accepted
    else:
        assert any(crops)  # some rejected
