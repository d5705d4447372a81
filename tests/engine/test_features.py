"""Reusing image-encoder outputs (`FeatureCache`): same logits as encoding every time (decoder- and
encoder-side policies), the encoder really is skipped on a repeat, the model is restored, and
misuse is refused."""
import pytest
import torch

from vtr import tiny
from vtr.engine import FeatureCache, PlanPolicy, Policy, prune
from vtr.plan import Plan


@pytest.fixture(scope="module", params=tiny.ARCHITECTURES)
def arch_model(request):
    return request.param, tiny.build(request.param)


def _tower(model):
    return getattr(model.model, "vision_tower", None) or model.model.visual


def _count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


@torch.no_grad()
def test_cached_features_give_identical_logits_and_skip_the_encoder(arch_model):
    arch, model = arch_model
    inp = tiny.make_inputs(model, arch)
    n = tiny.n_image_tokens(model, arch)
    L = model.config.get_text_config().num_hidden_layers
    plans = [Plan.full(L, n), Plan.drop_at(L, n, 1, max(1, n // 4)), Plan.drop_at(L, n, 2, 1)]
    refs = []
    for plan in plans:
        with prune(model, PlanPolicy(plan)):
            refs.append(model(**inp).logits)
    cache = FeatureCache()
    calls, handle = _count_calls(_tower(model))
    try:
        for plan, ref in zip(plans, refs):
            with prune(model, PlanPolicy(plan)), cache.attached(model):
                got = model(**inp).logits
            assert torch.equal(got, ref), (arch, plan)
    finally:
        handle.remove()
    assert len(calls) == 1, f"{arch}: the vision tower ran {len(calls)} times for one image batch"
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 1)
    assert "get_image_features" not in vars(model.model)  # patch removed on exit


@torch.no_grad()
def test_different_images_are_not_confused(arch_model):
    arch, model = arch_model
    a, b = tiny.make_inputs(model, arch, seed=0), tiny.make_inputs(model, arch, seed=1)
    ref_b = model(**b).logits
    cache = FeatureCache()
    with cache.attached(model):
        model(**a)
        got_b = model(**b).logits
    assert torch.equal(got_b, ref_b)
    assert cache.misses == 2


def test_one_cache_one_model():
    m1, m2 = tiny.build("llava", seed=0), tiny.build("llava", seed=1)
    cache = FeatureCache()
    with cache.attached(m1):
        pass
    with pytest.raises(ValueError, match="another model"):
        with cache.attached(m2):
            pass


def test_lru_bound_evicts_oldest():
    model = tiny.build("llava")
    per_batch = None
    cache = FeatureCache(max_bytes=10**9)
    with torch.no_grad(), cache.attached(model):
        model(**tiny.make_inputs(model, "llava", seed=0))
        per_batch = cache._bytes
    small = FeatureCache(max_bytes=2 * per_batch)
    with torch.no_grad(), small.attached(model):
        for seed in range(4):
            model(**tiny.make_inputs(model, "llava", seed=seed))
    assert len(small) == 2 and small._bytes <= 2 * per_batch


# downsampling runs the tower again on resized images: its own cache test is in tests/methods
ENCODER_SIDE = ("visionzip", "prumerge", "prumerge_plus", "tome", "cls_knee", "divprune", "pool")


@torch.no_grad()
def test_encoder_side_methods_get_the_towers_capture_back_from_the_cache():
    """Encoder-side methods read the tower's feature layer: on a memo hit the cache hands back what
    the tower gave (same logits as running it), and an entry made without that capture (by a
    decoder-side run) is recomputed once, then served."""
    import vtr.methods as M

    model = tiny.build("llava")
    inp = tiny.make_inputs(model, "llava", batch=3)
    n = tiny.n_image_tokens(model, "llava")
    info = M.model_info(model, n, n_text=8)
    policies = [M.get(name)(info, 0.5) if name != "cls_knee" else M.get(name)(info) for name in ENCODER_SIDE]
    refs = []
    for pol in policies:
        with prune(model, pol):
            refs.append(model(**inp).logits)
    cache = FeatureCache()
    calls, handle = _count_calls(_tower(model))
    try:
        with prune(model, Policy()), cache.attached(model):  # stores the features without a capture
            model(**inp)
        for pol, ref in zip(policies, refs):
            with prune(model, pol), cache.attached(model):
                got = model(**inp).logits
            assert torch.equal(got, ref), type(pol).__name__
            assert not hasattr(model, "_vtr_vision_capture")  # the slot leaves with the session
    finally:
        handle.remove()
    assert len(calls) == 2, f"the tower ran {len(calls)} times: once plain, once for the capture expected"
    assert (cache.hits, cache.misses, len(cache)) == (len(policies) - 1, 2, 1)


@torch.no_grad()
def test_generate_through_the_cache():
    """generate() routes pixel_values by the encoder's signature: the patch must keep it."""
    model = tiny.build("llava")
    inp = tiny.make_inputs(model, "llava")
    ref = model.generate(**inp, max_new_tokens=3, do_sample=False)
    cache = FeatureCache()
    with cache.attached(model):
        got = model.generate(**inp, max_new_tokens=3, do_sample=False)
    assert torch.equal(got, ref) and cache.misses == 1


@torch.no_grad()
def test_decoder_prefix_memo_gives_identical_logits(arch_model):
    """`decoder_layers=2`: the first two decoder layers of an unpruned prefill are served from the memo
    to later runs of the same batch, up to the first layer where a policy removes tokens."""
    arch, model = arch_model
    inp = tiny.make_inputs(model, arch)
    n = tiny.n_image_tokens(model, arch)
    L = model.config.get_text_config().num_hidden_layers
    plans = [Plan.full(L, n), Plan.drop_at(L, n, 1, max(1, n // 4)), Plan.drop_at(L, n, 2, 1),
             Plan.drop_at(L, n, 3, n // 2), Plan.full(L, n)]
    refs = []
    for plan in plans:
        with prune(model, PlanPolicy(plan)):
            refs.append(model(**inp).logits)
    cache = FeatureCache(decoder_layers=2)
    for plan, ref in zip(plans, refs):
        with prune(model, PlanPolicy(plan)), cache.attached(model):
            got = model(**inp).logits
        assert torch.equal(got, ref), (arch, plan)
    # first run: 2 misses; then layer 0 only (pruned before layer 1), then layers 0 and 1 three times
    assert (cache.layer_misses, cache.layer_hits) == (2, 1 + 2 + 2 + 2), arch
    assert all("forward" not in vars(layer) for layer in model.model.language_model.layers)


def test_decoder_prefix_memo_is_bypassed_under_autograd_and_for_generation():
    model = tiny.build("llava")
    inp = tiny.make_inputs(model, "llava")
    cache = FeatureCache(decoder_layers=2)
    with torch.no_grad(), cache.attached(model):
        model(**inp)
    misses = cache.layer_misses
    with cache.attached(model):  # training: gradients must flow through the layers
        out = model(**inp).logits
        out.sum().backward()
    assert cache.layer_hits == 0 and cache.layer_misses == misses
    assert model.model.language_model.layers[0].self_attn.q_proj.weight.grad is not None
    model.zero_grad()
    with torch.no_grad():
        ref = model.generate(**inp, max_new_tokens=3, do_sample=False)
        with cache.attached(model):
            got = model.generate(**inp, max_new_tokens=3, do_sample=False)
    assert torch.equal(got, ref) and cache.layer_hits == 0


@torch.no_grad()
@pytest.mark.parametrize("positions", ["original", "renumber"])
def test_pruned_prefix_memo_gives_identical_logits(arch_model, positions):
    """`prefix_bytes`: plans that agree on their first layers (a G-Search binary search at layer 2)
    reuse those layers' outputs from the second time the prefix is seen, with the logits of
    running every layer; a plan that differs from layer 1 on misses."""
    arch, model = arch_model
    if positions == "renumber" and arch == "qwen2_vl":
        pytest.skip("multimodal RoPE: renumbering is refused")
    inp = tiny.make_inputs(model, arch)
    n = tiny.n_image_tokens(model, arch)
    L = model.config.get_text_config().num_hidden_layers
    prefix = (n, max(1, n // 2))
    plans = [Plan(prefix + (k,) * (L - 2), n) for k in (max(1, n // 2), 1, max(1, n // 4), 0)]
    plans.append(Plan((n, 1) + (1,) * (L - 2), n))  # another prefix from layer 1 on
    refs = []
    for plan in plans:
        with prune(model, PlanPolicy(plan), positions=positions):
            refs.append(model(**inp).logits)
    cache = FeatureCache(prefix_bytes=1 << 30)
    for plan, ref in zip(plans, refs):
        with prune(model, PlanPolicy(plan), positions=positions), cache.attached(model):
            got = model(**inp).logits
        assert torch.equal(got, ref), (arch, plan)
    # each key is seen by plan 0 and stored by plan 1: layer 0 (nothing removed) then serves plans
    # 2, 3 and 4, layer 1 (the shared prefix) plans 2 and 3; deeper layers differ between plans
    assert (cache.prefix_hits, cache.prefix_misses) == (3 + 2, len(plans) * L - 5), arch
    assert all("forward" not in vars(layer) for layer in tiny_layers(model))


def tiny_layers(model):
    from vtr.engine.adapters import adapter_for

    return adapter_for(model).layers(model)


@torch.no_grad()
def test_pruned_prefix_memo_needs_the_session_to_say_what_was_gathered():
    """Hidden states replaced by anything but the pruning session's gather end the chain: every
    later layer runs as usual (here a forward pre-hook that scales a layer's input)."""
    model = tiny.build("llava")
    inp = tiny.make_inputs(model, "llava")
    layer = tiny_layers(model)[1]

    def double(m, args, kwargs):
        if args:
            return (args[0] * 2,) + args[1:], kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"] * 2}

    handle = layer.register_forward_pre_hook(double, with_kwargs=True)
    try:
        ref = model(**inp).logits
        cache = FeatureCache(prefix_bytes=1 << 30)
        for _ in range(3):
            with cache.attached(model):
                got = model(**inp).logits
            assert torch.equal(got, ref)
    finally:
        handle.remove()
    # layer 0 is reused from the third run on (its input is the decoder's); layers 1 on are not memoised
    assert (cache.prefix_hits, cache.prefix_misses) == (1, 2)
