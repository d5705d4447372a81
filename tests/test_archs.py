"""The shipped published architectures (`vtr.archs`): configs that build, prompts the model accepts, and
FastV's published strategies keeping vtr's tokens (`vtr.published`)."""
from __future__ import annotations

import pytest
import torch

from vtr import archs, published, tiny
from vtr.errors import InputError

REQUIRED = ("llava-1.5-7b", "llava-1.5-13b", "llava-next-vicuna-7b", "qwen2-vl-7b", "internvl3-8b")


def test_every_required_architecture_ships_with_its_provenance():
    assert set(REQUIRED) <= set(archs.names())
    for name in archs.names():
        s = archs.spec(name)
        assert s["checkpoint"] and s["source"] and "random" in s["weights"]
        assert isinstance(s["unconfirmed"], list)
        cfg = archs.config(name)
        assert cfg.get_text_config().num_hidden_layers == s["config"]["text_config"]["num_hidden_layers"]


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(InputError, match="known: arch:internvl3-8b, arch:llava-1.5-13b"):
        archs.spec("unknown")


def test_truncation_outside_the_depth_is_refused():
    with pytest.raises(InputError, match="--layers 33: llava-1.5-7b has 32"):
        archs.config("llava-1.5-7b", layers=33)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llava-1.5-7b", "qwen2-vl-7b"])
def test_a_truncated_architecture_runs_a_prompt_of_its_processor_size(name):
    model = archs.build(name, layers=1, vision_layers=1)
    inputs, n = archs.prompt(model, name, batch=2)
    expected = {"llava-1.5-7b": (336 // 14) ** 2, "qwen2-vl-7b": (672 // 14) ** 2 // 4}[name]
    assert n == expected
    image_id = getattr(model.config, "image_token_id", None) or model.config.image_token_index
    assert ((inputs["input_ids"] == image_id).sum(1) == n).all()
    with torch.inference_mode():
        out = model(**inputs, use_cache=False, logits_to_keep=1)
    assert out.logits.shape[:2] == (2, 1) and torch.isfinite(out.logits).all()
    d = archs.describe(model, name, n)
    assert d["hidden_size"] == archs.spec(name)["config"]["text_config"]["hidden_size"] and d["n_layers"] == 1


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
def test_published_fastv_strategies_keep_vtrs_tokens(arch):
    model = tiny.build(arch, layers=4)
    inputs = tiny.make_inputs(model, arch, batch=3)
    n = tiny.n_image_tokens(model, arch)
    kept = {}
    for name, ctx in published.strategies(model, n, 0.25, layer=2).items():
        with torch.inference_mode(), ctx() as run:
            out = model(**inputs, use_cache=False, logits_to_keep=1)
        kept[name] = (run.kept, out.logits)
    ref, logits = kept["vtr"]
    assert len(ref) == 3 and all(len(k) == round(0.25 * n) for k in ref)
    for name, (k, lg) in kept.items():
        assert k == ref, name
        # the same tokens in the same positions: the same next-token logits (eager vs SDPA rounding only)
        torch.testing.assert_close(lg, logits, atol=2e-4, rtol=1e-3)


def test_compare_reports_each_strategy_against_the_unpruned_model():
    model = tiny.build("llava", layers=4)
    inputs = tiny.make_inputs(model, "llava", batch=2)
    n = tiny.n_image_tokens(model, "llava")
    res = published.compare(model, inputs, n, [0.5, 0.25], layer=2, repeats=1, warmup=0)
    assert res["same_tokens"] is True
    assert [(r["keep"], r["strategy"]) for r in res["rows"]] == [
        (k, s) for k in (0.5, 0.25) for s in published.STRATEGIES]
    for r in res["rows"]:
        assert r["speedup"] > 0 and r["prefill_peak_bytes"] > 0
        assert r["efficiency"] == pytest.approx(r["speedup"] * r["flops_ratio"], abs=2e-3)
    eager = {r["keep"]: r for r in res["rows"] if r["strategy"] == "fastv_eager"}
    ours = {r["keep"]: r for r in res["rows"] if r["strategy"] == "vtr"}
    # eager attention materialises every layer's attention matrix: more memory than vtr's engine
    assert all(eager[k]["prefill_peak_bytes"] > ours[k]["prefill_peak_bytes"] for k in ours)
