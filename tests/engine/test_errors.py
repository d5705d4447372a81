"""Every bad input gets a clear error naming the problem (never a silently wrong result)."""
import pytest
import torch

from vtr import tiny
from vtr.engine import PlanPolicy, Policy, UnsupportedArchitecture, UnsupportedInput, prune
from vtr.plan import Plan, PlanError


@pytest.fixture(scope="module")
def llava():
    return tiny.build("llava")


def test_wrong_schedule_length(llava):
    n = tiny.n_image_tokens(llava, "llava")
    with pytest.raises(PlanError, match="schedule has 3 entries but the decoder has 4 layers"):
        with prune(llava, PlanPolicy(Plan.from_counts([n, n, n], n))):
            pass
    with pytest.raises(PlanError, match="schedule has 2 entries but the decoder has 4 layers"):
        Plan.from_counts([n, n], n, n_layers=4)


def test_keep_more_than_available():
    with pytest.raises(PlanError, match="keep=20 is outside 0..16"):
        Plan.from_counts([16, 20, 8, 8], 16)
    with pytest.raises(PlanError, match="rates must lie in"):
        Plan.from_rates([1.0, 1.5], 16)


def test_increasing_schedule():
    with pytest.raises(PlanError, match="dropped tokens cannot come back"):
        Plan.from_counts([16, 8, 12, 4], 16)


def test_plan_for_other_token_count(llava):
    inp = tiny.make_inputs(llava, "llava", batch=2)
    with pytest.raises(PlanError, match="made for 32 vision tokens but sample 0 has 16"):
        with prune(llava, PlanPolicy(Plan.from_counts([32, 16, 16, 8], 32))), torch.no_grad():
            llava(**inp)


def test_unsupported_architecture():
    class Other(torch.nn.Module):
        pass
    with pytest.raises(UnsupportedArchitecture, match="unsupported architecture Other; supported: "):
        with prune(Other(), Policy()):
            pass


def test_unknown_query_and_position_mode(llava):
    with pytest.raises(ValueError, match="unknown query kind"):
        PlanPolicy(Plan.full(4, 16), query="first")
    with pytest.raises(ValueError, match="unknown position mode"):
        with prune(llava, Policy(), positions="shuffle"):
            pass


def test_flash_attention_refused(llava):
    llava.config.text_config._attn_implementation = "flash_attention_2"
    try:
        with pytest.raises(UnsupportedInput, match="attention implementation 'flash_attention_2'"):
            with prune(llava, Policy()):
                pass
    finally:
        llava.config.text_config._attn_implementation = "sdpa"


def test_renumber_refused_for_mrope():
    model = tiny.build("qwen2_vl")
    with pytest.raises(UnsupportedInput, match="multimodal RoPE"):
        with prune(model, Policy(), positions="renumber"):
            pass


@torch.no_grad()
def test_renumber_positions_runs_and_differs(llava):
    inp = tiny.make_inputs(llava, "llava", batch=2)
    plan = Plan.from_counts([16, 8, 8, 4], 16)
    with prune(llava, PlanPolicy(plan)):
        a = llava(**inp).logits[:, -1]
    with prune(llava, PlanPolicy(plan), positions="renumber"):
        b = llava(**inp).logits[:, -1]
    assert torch.isfinite(b).all() and not torch.allclose(a, b)
