"""generate() continuing the cache of an earlier generate() (each in its own `prune` block, the
image only in the first call, as transformers' test_generate_continue_from_past_key_values does):
under keep-all it equals the unpatched model exactly; under pruning it equals one pruned generate()
of the same total length."""
import copy

import pytest
import torch

from vtr import tiny
from vtr.engine import PlanPolicy, Policy, prune
from vtr.plan import Plan


def _generate(model, inputs, n, past=None, policy=None):
    kw = dict(max_new_tokens=n, do_sample=False, return_dict_in_generate=True, output_scores=True,
              pad_token_id=tiny.PAD)
    if past is not None:
        kw["past_key_values"] = past
    with (prune(model, policy) if policy is not None else torch.no_grad()):
        return model.generate(**inputs, **kw)


def _continue_inputs(inputs, out):
    """Second call: the whole sequence so far, its mask, no image inputs (they are in the cache)."""
    seq = out.sequences
    mask = torch.cat([inputs["attention_mask"], torch.ones(seq.shape[0], seq.shape[1] - inputs["input_ids"].shape[1],
                                                           dtype=inputs["attention_mask"].dtype)], 1)
    return {"input_ids": seq, "attention_mask": mask}


def _two_calls(model, inputs, policy):
    first = _generate(model, inputs, 3, policy=policy)
    second = _generate(model, _continue_inputs(inputs, first), 3, past=first.past_key_values, policy=policy)
    return first, second


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_continuing_a_cache_under_keep_all_equals_the_unpatched_model(arch):
    model = tiny.build(arch)
    inputs = tiny.make_inputs(model, arch, batch=2)
    inputs.pop("position_ids", None)  # generate() computes positions itself
    ref1, ref2 = _two_calls(model, inputs, None)
    got1, got2 = _two_calls(model, inputs, Policy())
    assert torch.equal(got2.sequences, ref2.sequences)
    for a, b in zip(got2.scores, ref2.scores):
        assert torch.equal(a, b)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_continuing_a_pruned_cache_equals_one_pruned_generate(arch):
    model = tiny.build(arch)
    inputs = tiny.make_inputs(model, arch, batch=2)
    inputs.pop("position_ids", None)
    n = tiny.n_image_tokens(model, arch)
    L = model.config.get_text_config().num_hidden_layers
    plan = Plan.drop_at(L, n, 1, n // 2)
    whole = _generate(model, inputs, 6, policy=PlanPolicy(plan))
    _, second = _two_calls(model, inputs, PlanPolicy(plan))
    assert torch.equal(second.sequences, whole.sequences)
    for a, b in zip(second.scores, whole.scores[3:]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
