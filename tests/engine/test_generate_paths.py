"""generate() continuing the cache of an earlier generate() (each in its own `prune` block, the
image only in the first call, as transformers' test_generate_continue_from_past_key_values does):
under keep-all it equals the unpatched model exactly; under pruning it equals one pruned generate()
of the same total length."""
import pytest
import torch

from vtr import tiny
from vtr.engine import PlanPolicy, Policy, prune
from vtr.plan import Plan

from .helpers import BANNED, Frozen, generate, half_from, setup


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
    new = seq.shape[1] - inputs["input_ids"].shape[1]
    ones = torch.ones(seq.shape[0], new, dtype=inputs["attention_mask"].dtype)
    mask = torch.cat([inputs["attention_mask"], ones], 1)
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


# ---------------------------------------------------------------------------------------- more paths


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_continuing_a_cache_whose_layer_0_was_pruned(arch):
    """Layer 0 keeps fewer tokens than the input had: generate() counts the new tokens of the
    continued sequence from the cache's length, which must be the input's, not layer 0's."""
    model, inputs, n, L = setup(arch)
    no_end = dict(suppress_tokens=BANNED + [2])  # an early end would make one call differ from two
    whole = generate(model, inputs, half_from(0, model, arch), max_new_tokens=6, **no_end)
    first = generate(model, inputs, half_from(0, model, arch), max_new_tokens=3, **no_end)
    assert first.past_key_values.get_seq_length() == first.sequences.shape[1] - 1  # all but the last token
    second = generate(model, _continue_inputs(inputs, first), half_from(0, model, arch), max_new_tokens=3,
                      past_key_values=first.past_key_values, **no_end)
    assert torch.equal(second.sequences, whole.sequences)
    for a, b in zip(second.scores, whole.scores[3:]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


SEARCHES = {"beam": dict(num_beams=2, num_return_sequences=2),
            "sample": dict(do_sample=True, top_k=0)}


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("search", sorted(SEARCHES))
@torch.no_grad()
def test_beam_search_and_sampling_under_keep_all_equal_the_unpatched_model(arch, search):
    model, inputs, _, _ = setup(arch)
    torch.manual_seed(0)
    ref = generate(model, inputs, **SEARCHES[search], output_logits=True)
    torch.manual_seed(0)
    got = generate(model, inputs, Policy(), **SEARCHES[search], output_logits=True)
    assert torch.equal(got.sequences, ref.sequences)
    for a, b in zip(got.logits, ref.logits):
        assert torch.equal(a, b)
    if search == "beam":
        assert torch.equal(got.sequences_scores, ref.sequences_scores)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("search", sorted(SEARCHES))
@torch.no_grad()
def test_pruned_beam_search_and_sampling_equal_recomputation(arch, search):
    """Cached pruned decoding (beams reorder the cache) == re-running every step from scratch with
    the selection of the first prefill."""
    model, inputs, _, _ = setup(arch)
    torch.manual_seed(0)
    cached = generate(model, inputs, half_from(1, model, arch), **SEARCHES[search], output_logits=True)
    torch.manual_seed(0)
    frozen = Frozen(half_from(1, model, arch))
    plain = generate(model, inputs, frozen, **SEARCHES[search], output_logits=True, use_cache=False)
    assert frozen.prefills > 1 and frozen.record
    assert torch.equal(cached.sequences, plain.sequences)
    for a, b in zip(cached.logits, plain.logits):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
