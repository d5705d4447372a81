"""`vtr.chapters.paper_scale`: the GPU time model behaves as its docstring says."""
import pytest

from vtr.chapters import paper_scale as P
from vtr.experiments.sizes import SIZES
from vtr.plan import Plan

MODEL, GPU, WORK = P.Model(), P.GPU(), P.Workload()


def test_pruning_cuts_the_estimated_time_and_decode_is_memory_bound():
    full = Plan.full(MODEL.shape.n_layers, MODEL.n_vision)
    t_full = P.seconds_per_sample(full, MODEL, GPU, answer_tokens=3)
    t_small = P.seconds_per_sample(P.at_budget(MODEL, 0.125), MODEL, GPU, answer_tokens=3)
    assert t_small["prefill"] < t_full["prefill"] and t_small["decode"] <= t_full["decode"]
    # one decode step reads the 7B decoder's weights once per batch: at least that long
    per_step = MODEL.decoder_params * MODEL.bytes_per_value / GPU.batch / GPU.bytes_per_s
    assert t_full["decode"] >= 3 * per_step


@pytest.mark.parametrize("budget", [0.5, 0.25, 0.125])
def test_at_budget_spends_the_budget(budget):
    assert P.at_budget(MODEL, budget).mean_keep_rate <= budget + 1e-9


def test_chapter_work_follows_the_build_sizes(monkeypatch):
    before = {r["chapter"]: r["samples"] for r in P.chapter_work(MODEL, WORK) if r["part"] == "analysis"}
    monkeypatch.setitem(SIZES, "rank_questions", (600, 32))
    after = {r["chapter"]: r["samples"] for r in P.chapter_work(MODEL, WORK) if r["part"] == "analysis"}
    assert after["3 Rank consistency"] == 2 * before["3 Rank consistency"]
    hours = P.chapter_hours(MODEL, GPU, WORK)
    assert all(h["hours"] > 0 for h in hours) and {h["chapter"][0] for h in hours} == set("2345678")


def llava_config(next_grid=None, **text):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaNextConfig

    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                              num_attention_heads=16, patch_size=14,
                              image_size=336)
    llama = LlamaConfig(**{"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                           "num_attention_heads": 32, "vocab_size": 32000, **text})
    if next_grid is None:
        return LlavaConfig(text_config=llama, vision_config=vision)
    return LlavaNextConfig(text_config=llama, vision_config=vision, image_grid_pinpoints=next_grid)


def test_a_llava_config_gives_the_time_model_of_llava_1_5_7b():
    m = P.Model.from_config(llava_config())
    assert (m.shape.hidden, m.shape.intermediate, m.shape.n_layers) == (4096, 11008, 32)
    assert (m.n_vision, m.vocab, m.crops) == (MODEL.n_vision, MODEL.vocab, 1)
    assert m.decoder_params == MODEL.decoder_params and m.encode_flops == MODEL.encode_flops


def test_llava_next_is_estimated_at_its_largest_tiling():
    from vtr.flops import vision_tower_flops

    grid = [[336, 672], [672, 672], [336, 1008]]
    m = P.Model.from_config(llava_config(next_grid=grid))
    assert m.crops == 1 + 4 and m.n_vision == 5 * MODEL.n_vision
    projector = MODEL.encode_flops - vision_tower_flops(MODEL.vision)  # per 576 tokens
    assert m.encode_flops == vision_tower_flops(m.vision, 5) + 5 * projector


def test_a_config_without_a_clip_tower_is_refused():
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="qwen2_vl"):
        P.Model.from_config(SimpleNamespace(model_type="qwen2_vl", vision_config=SimpleNamespace(depth=32)))
