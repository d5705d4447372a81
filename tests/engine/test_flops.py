"""Analytic FLOPs against torch's FlopCounterMode on a real forward."""
import torch
from torch.utils.flop_counter import FlopCounterMode

from vtr import tiny
from vtr.engine import PlanPolicy, Policy, prune
from vtr.flops import DecoderShape, paper_layer_macs, prefill_flops, scoring_flops
from vtr.plan import Plan


def measured(model, inputs, policy):
    with prune(model, policy) as session, FlopCounterMode(display=False) as fc, torch.no_grad():
        model(**inputs, use_cache=False, logits_to_keep=1)
    return fc.get_total_flops(), session.last_stats["token_counts"].tolist()


def test_prefill_flops_match_flop_counter_full_and_pruned():
    # eager attention so that FlopCounterMode sees the attention matmuls (it does not count the fused
    # CPU SDPA kernel); the engine supports eager too (additive float masks)
    model = tiny.build("llava", layers=4)
    model.set_attn_implementation("eager")
    inputs = tiny.make_inputs(model, "llava", batch=2)
    inputs["attention_mask"][:] = 1  # no padding: every counted token is computed
    inputs["position_ids"] = torch.arange(inputs["input_ids"].shape[1]).expand_as(inputs["input_ids"])
    n = tiny.n_image_tokens(model, "llava")
    shape = DecoderShape.from_config(model.config.get_text_config())
    plan = Plan.from_counts([n, n // 2, n // 4, 0], n)
    for policy in (Policy(), PlanPolicy(plan)):
        got, counts = measured(model, inputs, policy)
        predicted = prefill_flops(model, counts, n_images=2)
        if isinstance(policy, PlanPolicy):  # one last-token score per sample at each pruning boundary
            predicted += sum(scoring_flops(counts[b][layer - 1], 1, shape)
                             for b in range(2) for layer in (1, 2, 3))
        assert abs(got - predicted) / got < 0.005, (got, predicted)


def test_paper_formula():
    assert paper_layer_macs(10, 4, 16) == 4 * 10 * 16 + 2 * 100 * 4 + 2 * 10 * 4 * 16
