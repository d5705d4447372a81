"""Downsampling: the features the decoder receives equal the vision tower and projector run directly
on the resized image, the keep rate, and the refusals where the image cannot be resized."""
import pytest
import torch
import torch.nn.functional as F

import vtr.methods as M
from vtr.engine import FeatureCache, UnsupportedInput, adapter_for, prune
from vtr.engine.adapters import Adapter
from vtr.engine.encoder import resizer
from vtr import tiny
from vtr.methods import pool

from .helpers import check_vision_at_layer0, run, run_stats, setup


def engine_output(model, inp, policy):
    """(features, keep) the policy's encoder step returned in one prefill."""
    seen, reduce = {}, policy.reduce

    def spy(view, k):
        seen["out"] = reduce(view, k)
        return seen["out"]
    policy.reduce = spy
    run_stats(model, inp, policy)
    return seen["out"]


def tower_on(model, pixels):
    """Projected patch features of `pixels` at any size, straight from the tower and projector."""
    with torch.no_grad():
        out = model.model.vision_tower(pixels, output_hidden_states=True, interpolate_pos_encoding=True)
        return model.model.multi_modal_projector(out.hidden_states[model.config.vision_feature_layer][:, 1:])


@pytest.mark.parametrize("resample", ["bicubic", "bilinear"])
def test_features_equal_the_tower_on_the_resized_image(llava, resample):
    model, inp, info = llava
    feats, keep = engine_output(model, inp, M.get("downsample")(info, 0.25, resample=resample))
    small = F.interpolate(inp["pixel_values"], size=(16, 16), mode=resample, antialias=True,
                          align_corners=False)
    slots = pool.grid_slots(2, 2, 4, 4)
    assert keep.sum(1).tolist() == [4] * 3 and keep[:, slots].all()
    torch.testing.assert_close(feats[:, slots], tower_on(model, small))


def test_area_resize_is_the_mean_of_pixel_blocks(llava):
    """Halving with `area` averages 2 x 2 pixel blocks: the tower on avg_pool2d of the image."""
    model, inp, info = llava
    feats, _ = engine_output(model, inp, M.get("downsample")(info, 0.25, resample="area"))
    small = F.avg_pool2d(inp["pixel_values"], 2)
    torch.testing.assert_close(feats[:, pool.grid_slots(2, 2, 4, 4)], tower_on(model, small))


def test_non_square_count_resizes_to_a_rectangle(llava):
    """Half of 16 tokens is 8: the largest near-square grid is 2 x 3, an image 16 px high, 24 wide."""
    model, inp, info = llava
    pol = M.get("downsample")(info, 0.5)
    feats, keep = engine_output(model, inp, pol)
    small = F.interpolate(inp["pixel_values"], size=(16, 24), mode="bicubic", antialias=True,
                          align_corners=False)
    torch.testing.assert_close(feats[:, pool.grid_slots(2, 3, 4, 4)], tower_on(model, small))
    assert keep.sum(1).tolist() == [6] * 3 and info.cost(pol.plan, "keep") == pytest.approx(6 / 16)


@pytest.mark.parametrize("budget,count", [(0.25, 4), (0.5, 6), (0.1, 2)])
def test_keep_rate_through_the_engine(llava, budget, count):
    model, inp, info = llava
    pol = M.get("downsample")(info, budget)
    _, stats = run_stats(model, inp, pol)
    B = inp["input_ids"].shape[0]
    check_vision_at_layer0(stats, inp, info.n_vision, [count] * B)
    assert info.cost(pol.plan, "keep") == pytest.approx(count / info.n_vision)


def test_testbed_sized_budget_is_a_six_by_six_grid():
    info = M.ModelInfo(8, 144, 8, None)
    assert M.get("downsample")(info, 0.25).plan.keep == (36,) * 8


def test_full_budget_equals_unpatched(llava):
    model, inp, info = llava
    with torch.no_grad():
        ref = model(**inp).logits
    assert torch.equal(run(model, inp, M.get("downsample")(info, 1.0)), ref)


@pytest.mark.parametrize("family", ["llava_next", "qwen2_vl", "internvl"])
def test_other_families_are_refused_in_one_line(llava, family):
    model, inp, _ = llava
    resized = resizer(model, Adapter(family), inp["pixel_values"])
    with pytest.raises(UnsupportedInput, match=f"{family}: only LLaVA") as err:
        resized(2, 2, "bicubic")
    assert "\n" not in str(err.value)


def test_without_pixel_values_it_refuses(llava):
    model, _, _ = llava
    with pytest.raises(UnsupportedInput, match="pixel_values"):
        resizer(model, adapter_for(model), None)(2, 2, "bicubic")


def test_llava_next_crops_are_refused():
    model, inp, info = setup("llava_next", batch=2)
    with pytest.raises(UnsupportedInput):
        run(model, inp, M.get("downsample")(info, 0.25))


def test_feature_cache_serves_both_encodings(llava):
    """With a FeatureCache the logits are the same, and a second run reads both the full image's
    and the resized image's features from the memo."""
    model, inp, info = llava
    pol = M.get("downsample")(info, 0.25)
    ref = run(model, inp, pol)
    cache = FeatureCache()
    for _ in range(2):
        with torch.no_grad(), prune(model, pol), cache.attached(model):
            assert torch.equal(model(**inp).logits, ref)
    assert (cache.hits, cache.misses) == (2, 2)


def test_generate_encodes_the_images_before_the_forward_and_still_resizes(llava):
    """generate() may run the tower before the model's forward and pass its features instead of
    pixel_values (as on a HuggingFace checkpoint): the engine re-encodes from the images the tower
    saw, and the answers equal those of a direct forward under the same policy."""
    from tests.engine.helpers import run as generate_run

    model, inp, info = llava
    pol = M.get("downsample")(info, 0.25)
    out, _ = generate_run(model, {k: v for k, v in inp.items() if k != "position_ids"}, pol, max_new_tokens=1)
    direct = run(model, inp, M.get("downsample")(info, 0.25))
    allowed = slice(0, tiny.IMAGE_TOKEN)  # generate() suppresses the image and padding tokens
    torch.testing.assert_close(out.scores[0][:, allowed], direct[:, -1, allowed].float())
