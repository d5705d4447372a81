"""generate(cache_implementation="static"): every layer's cache has max_cache_len slots and the
decoder gets a 4-D mask (llava, llava_next) or a dict of them (qwen2_vl, internvl) instead of the
2-D padding mask. Under keep-all the output is the unpatched model's, bit for bit; pruned, it is the
pruned dynamic-cache output, and the padding the engine reads from that mask is the batch's."""
import pytest
import torch

from vtr import tiny
from vtr.engine import PlanPolicy, Policy
from vtr.plan import Plan

from .helpers import assert_close, assert_same, generate, half_from, run, setup

STATIC = dict(cache_implementation="static")


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
def test_keep_all_static_cache_equals_the_unpatched_model(arch):
    model, inputs, n, L = setup(arch)
    ref = generate(model, inputs, **STATIC)
    for policy in (Policy(), PlanPolicy(Plan.full(L, n))):
        got, session = run(model, inputs, policy, **STATIC)
        assert_same(got, ref)
        # padding read from the static path's mask: each sample's own token count, not the width
        assert torch.equal(session.last_stats["token_counts"][:, 0], inputs["attention_mask"].sum(1))


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("start", [0, 1])
def test_pruned_static_cache_equals_the_dynamic_cache(arch, start):
    model, inputs, n, L = setup(arch)
    dynamic = generate(model, inputs, half_from(start, model, arch))
    static, session = run(model, inputs, half_from(start, model, arch), **STATIC)
    assert_close(static, dynamic)
    real, drop = inputs["attention_mask"].sum(1), n - n // 2
    counts = session.last_stats["token_counts"]  # (B, layers): tokens entering each layer
    assert torch.equal(counts[:, 0], real - drop * (start == 0))
    assert torch.equal(counts[:, -1], real - drop)

def test_pruned_static_cache_under_eager_attention():
    """eager adds the mask to the logits: the unwritten slots are masked with the dtype's minimum."""
    model, inputs, n, L = setup("llava")
    model.set_attn_implementation("eager")
    dynamic = generate(model, inputs, half_from(1, model, "llava"))
    static = generate(model, inputs, half_from(1, model, "llava"), **STATIC)
    assert_close(static, dynamic)
