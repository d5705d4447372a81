import numpy as np
import pytest

from vtr.analysis import region_lift
from vtr.testbed import scenes
from vtr.testbed.probes import REGIONS, attribute_regions


def test_regions_partition_the_patches_and_hold_the_named_object():
    split, masks = attribute_regions(12, seed=5)
    stacked = np.stack([masks[r] for r in REGIONS]).astype(int)  # (regions, n, N)
    assert stacked.shape == (len(REGIONS), 12, scenes.GRID ** 2)
    assert (stacked.sum(0) == 1).all()  # disjoint and covering
    assert masks["target"].any(1).all()
    for s in split.samples:
        assert s.family == "attribute" and s.question.startswith("what colour is the ")


def test_object_patches_cover_the_centre_patch():
    rng = np.random.default_rng(0)
    for _ in range(20):
        for o in scenes.sample_scene(rng, 4).objects:
            m = scenes.object_patches(o).reshape(scenes.GRID, scenes.GRID)
            assert m[o.cy // scenes.PATCH_SIZE, o.cx // scenes.PATCH_SIZE]
            assert 1 <= m.sum() <= 9


def test_region_lift_is_one_for_uniform_attention_and_conserves_mass():
    rng = np.random.default_rng(1)
    n, L, N = 7, 3, 16
    labels = rng.integers(0, 3, size=(n, N))
    masks = {f"r{i}": labels == i for i in range(3)}
    uniform = region_lift(np.ones((n, L, N)), masks)
    assert all(np.allclose(v, 1.0) for v in uniform.values())
    scores = rng.random((n, L, N))
    scores[:, :, 0] += 50.0  # a strong preference for token 0
    lift = region_lift(scores, masks)
    top = f"r{labels[0, 0]}"
    assert lift[top][0] > 1.0
    # per sample, the token-share-weighted lifts sum to 1; check it on a single sample
    one = {k: m[:1] for k, m in masks.items() if m[0].any()}
    single = region_lift(scores[:1], one)
    total = sum(np.asarray(single[k]) * one[k][0].mean() for k in one)
    assert np.allclose(total, 1.0)


def test_region_lift_is_nan_for_a_region_no_sample_has():
    masks = {"all": np.ones((2, 4), bool), "none": np.zeros((2, 4), bool)}
    out = region_lift(np.ones((2, 1, 4)), masks)
    assert out["all"] == pytest.approx([1.0])
    assert np.isnan(out["none"][0])
