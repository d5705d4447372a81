"""The engine against the unpatched model and against a slow hand-run reference, on tiny random
configs of every supported architecture."""
import pytest
import torch

from vtr import tiny
from vtr.engine import PlanPolicy, Policy, prune
from vtr.plan import Plan

ARCHS = tiny.ARCHITECTURES


@pytest.fixture(scope="module", params=ARCHS)
def arch_model(request):
    torch.manual_seed(0)
    return request.param, tiny.build(request.param)


def n_layers(model):
    return model.config.get_text_config().num_hidden_layers


@torch.no_grad()
def test_keep_all_equals_unpatched_and_model_restored(arch_model):
    arch, model = arch_model
    inp = tiny.make_inputs(model, arch)
    ref = model(**inp).logits
    n = tiny.n_image_tokens(model, arch)
    hooks_before = [(len(m._forward_pre_hooks), len(m._forward_hooks)) for m in model.modules()]
    with prune(model, PlanPolicy(Plan.full(n_layers(model), n))):
        got = model(**inp).logits
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    after = model(**inp).logits
    assert torch.equal(after, ref)
    assert [(len(m._forward_pre_hooks), len(m._forward_hooks)) for m in model.modules()] == hooks_before


class RandomKeep(Policy):
    """Prunes a seeded random subset of vision tokens at a few layers (per sample)."""

    def __init__(self, schedule, seed=0):
        self.schedule, self.gen = schedule, torch.Generator().manual_seed(seed)
        self.log = []

    def keep_before(self, layer, view):
        if layer not in self.schedule:
            return None
        vis = view.vision & view.valid
        keep = ~view.vision.clone()
        for b in range(vis.shape[0]):
            idx = vis[b].nonzero().flatten()
            k = max(0, int(round(len(idx) * self.schedule[layer])))
            chosen = idx[torch.randperm(len(idx), generator=self.gen)[:k]]
            keep[b, chosen] = True
        # record survivors by original vision index
        self.log.append((layer,
                         [sorted(view.vision_index[b][keep[b] & vis[b]].tolist())
                          for b in range(vis.shape[0])]))
        return keep


def reference_last_logits(model, arch, inp, survivors_by_layer):
    """Slow reference: run the decoder layer by layer by hand, dropping tokens explicitly, per sample."""
    lm = model.model.language_model
    outs = []
    for b in range(inp["input_ids"].shape[0]):
        single = {k: (v[b:b + 1] if torch.is_tensor(v) and v.shape[0] == inp["input_ids"].shape[0] else v)
                  for k, v in inp.items()}
        if arch == "qwen2_vl":
            single["pixel_values"] = inp["pixel_values"][b * 64:(b + 1) * 64]
            single["image_grid_thw"] = inp["image_grid_thw"][b:b + 1]
        mask = single["attention_mask"][0].bool()
        captured = {}

        def grab(mod, args, kwargs):
            captured["embeds"] = kwargs["inputs_embeds"]
            captured["pos"] = kwargs.get("position_ids")
            raise StopIteration

        h = lm.register_forward_pre_hook(grab, with_kwargs=True)
        try:
            model(**single)
        except StopIteration:
            pass
        finally:
            h.remove()
        x = captured["embeds"][0][mask]
        ids = single["input_ids"][0][mask]
        pos = captured["pos"]
        if arch == "qwen2_vl":
            pos = pos[1:] if pos.shape[0] == 4 else pos
            pos = pos[:, 0][:, mask]
        else:
            pos = single["position_ids"][0][mask]
        vision = ids == tiny.IMAGE_TOKEN
        vindex = torch.where(vision, vision.long().cumsum(0) - 1, -1)
        keep_idx = torch.arange(len(ids))
        for li, layer in enumerate(lm.layers):
            if li in survivors_by_layer:
                allowed = set(survivors_by_layer[li][b])
                sel = [i for i in range(len(keep_idx)) if not vision[i] or int(vindex[i]) in allowed]
                x, vision, vindex, pos = x[sel], vision[sel], vindex[sel], (pos[..., sel])
            T = x.shape[0]
            pid = pos[None] if pos.ndim == 1 else pos[:, None]
            cos, sin = lm.rotary_emb(x[None], pid)
            causal = torch.ones(T, T, dtype=torch.bool).tril()[None, None]
            x = layer(x[None], attention_mask=causal, position_embeddings=(cos, sin),
                      position_ids=pid if pos.ndim == 1 else None)[0]
            keep_idx = torch.arange(T)
        x = lm.norm(x[None])
        outs.append(model.lm_head(x[:, -1]))
    return torch.cat(outs)


@torch.no_grad()
@pytest.mark.parametrize("seed", [0, 1])
def test_random_plans_equal_hand_reference(arch_model, seed):
    arch, model = arch_model
    inp = tiny.make_inputs(model, arch, seed=seed)
    L = n_layers(model)
    policy = RandomKeep({1: 0.6, L - 1: 0.3} if seed == 0 else {0: 0.5, 2: 0.25}, seed=seed)
    with prune(model, policy):
        got = model(**inp).logits[:, -1]
    survivors = {layer: s for layer, s in policy.log}
    ref = reference_last_logits(model, arch, inp, survivors)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_batch_equals_per_sample(arch_model):
    arch, model = arch_model
    inp = tiny.make_inputs(model, arch, batch=3)
    n = tiny.n_image_tokens(model, arch)
    L = n_layers(model)
    plan = Plan.from_counts([n, n // 2, n // 2, n // 4] + [n // 4] * (L - 4), n)
    with prune(model, PlanPolicy(plan)):
        batched = model(**inp).logits[:, -1]
    for b in range(3):
        single = tiny.make_inputs(model, arch, batch=3)
        keep_len = int(single["attention_mask"][b].sum())
        one = {}
        for k, v in single.items():
            if k == "pixel_values" and arch == "qwen2_vl":
                one[k] = v[b * 64:(b + 1) * 64]
            elif torch.is_tensor(v) and v.ndim >= 2 and v.shape[1] == single["input_ids"].shape[1]:
                one[k] = v[b:b + 1, -keep_len:]
            elif torch.is_tensor(v):
                one[k] = v[b:b + 1]
        with prune(model, PlanPolicy(plan)):
            alone = model(**one).logits[:, -1]
        torch.testing.assert_close(batched[b:b + 1], alone, atol=1e-4, rtol=1e-4)


class Recording(Policy):
    """Wraps a policy; records the surviving original vision indices per layer at the first prefill."""

    def __init__(self, inner):
        self.inner, self.record, self.calls = inner, {}, 0

    def start(self, batch_size):
        self.calls += 1
        self.inner.start(batch_size)

    def keep_before(self, layer, view):
        keep = self.inner.keep_before(layer, view)
        if keep is not None and self.calls == 1:
            vis = view.vision & view.valid & keep
            self.record[layer] = [set(view.vision_index[b][vis[b]].tolist()) for b in range(vis.shape[0])]
        return keep


class Replay(Policy):
    """Keeps exactly the recorded vision tokens at each layer (a frozen selection)."""

    def __init__(self, record):
        self.record = record

    def keep_before(self, layer, view):
        if layer not in self.record:
            return None
        keep = ~view.vision.clone()
        for b, allowed in enumerate(self.record[layer]):
            keep[b] |= torch.isin(view.vision_index[b], torch.tensor(sorted(allowed), dtype=torch.long))
        return keep


@torch.no_grad()
def test_generate_with_cache_equals_recomputation(arch_model):
    """Cached decoding under a plan == recomputing the whole sequence at every step with the
    selection made at prefill (the last token changes during decoding, so re-scoring would differ)."""
    arch, model = arch_model
    inp = tiny.make_inputs(model, arch, batch=2)
    inp.pop("position_ids", None)
    n = tiny.n_image_tokens(model, arch)
    L = n_layers(model)
    plan = Plan.from_counts([n] + [n // 2] * (L - 2) + [n // 4], n)
    banned = list(range(tiny.IMAGE_TOKEN, tiny.VOCAB))
    rec = Recording(PlanPolicy(plan))
    with prune(model, rec):
        cached = model.generate(**inp, max_new_tokens=4, do_sample=False, use_cache=True,
                                suppress_tokens=banned)
    assert rec.calls == 1 and rec.record
    with prune(model, Replay(rec.record)):
        plain = model.generate(**inp, max_new_tokens=4, do_sample=False, use_cache=False,
                               suppress_tokens=banned)
    assert torch.equal(cached, plain)
    # and the cache really holds only the kept tokens in pruned layers
    with prune(model, PlanPolicy(plan)) as session:
        model(**inp, use_cache=True)
    valid_rows = int(inp["attention_mask"].sum())
    assert session.last_stats["tokens_per_layer"][0] == valid_rows
    assert session.last_stats["tokens_per_layer"][-1] == valid_rows - 2 * (n - n // 4)
