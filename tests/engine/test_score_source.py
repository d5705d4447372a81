"""FastV and PyramidDrop keep exactly the tokens their papers' rules name, checked against an
independent eager-attention run (`output_attentions=True`) of the same weights: FastV ranks the
vision tokens entering layer K by the last token's attention in layer K-1 (mean over heads),
PyramidDrop by the last token's attention in layer K itself, computed on layer K's input."""
import pytest
import torch

from vtr import methods, tiny
from vtr.engine import prune

ARCHS = tiny.ARCHITECTURES


def _eager(model):
    model.config._attn_implementation = "eager"
    for m in model.modules():
        if hasattr(m, "config") and hasattr(m.config, "_attn_implementation"):
            m.config._attn_implementation = "eager"
    return model


@torch.no_grad()
def _last_rows(eager, inputs) -> list[torch.Tensor]:
    """Per layer: (B, T) head-mean attention row of the last position (left padding: every sample's
    last token), from an eager run with `output_attentions`."""
    atts = eager(**inputs, output_attentions=True, use_cache=False).attentions  # per layer (B, H, T, T)
    return [a[:, :, -1].float().mean(1) for a in atts]


def _reference_keep(rows, vision, attn_layer: int, k: int) -> list[set[int]]:
    """Per sample: indices (among its vision tokens) of the k vision tokens with the highest
    head-mean attention from the last position in `attn_layer`'s attention map."""
    row = rows[attn_layer]
    out = []
    for b in range(row.shape[0]):
        pos = vision[b].nonzero().squeeze(1)
        top = torch.topk(row[b, pos], k).indices
        out.append(set(top.tolist()))
    return out


def _engine_keep(model, inputs, policy, layer: int) -> list[set[int]]:
    kept = {}
    decide = policy.keep_before

    def recording(index, view):
        mask = decide(index, view)
        if index == layer:
            assert mask is not None
            for b in range(mask.shape[0]):
                sel = mask[b] & view.vision[b] & view.valid[b]
                kept[b] = set(view.vision_index[b][sel].tolist())
        return mask

    policy.keep_before = recording
    with torch.no_grad(), prune(model, policy):
        model(**inputs, use_cache=False)
    return [kept[b] for b in sorted(kept)]


def _info(model, n_vision):
    return methods.model_info(model, n_vision, 8)


def _check(model, eager, inputs, n_vision, vision, layers=None, keeps=None):
    L = model.config.get_text_config().num_hidden_layers
    rows = _last_rows(eager, inputs)
    for K in layers or range(1, L):
        for k in keeps or sorted({max(1, n_vision // 2), max(1, n_vision // 4), 1}):
            fastv = methods.get("fastv")(_info(model, n_vision), K=K, R=1 - k / n_vision)
            assert fastv.plan.keep[K] == k
            got = _engine_keep(model, inputs, fastv, K)
            assert got == _reference_keep(rows, vision, K - 1, k), f"fastv K={K} keep={k}"
            pdrop = methods.get("pdrop")(_info(model, n_vision), layers=(K,), lam=k / n_vision)
            assert pdrop.plan.keep[K] == k
            got = _engine_keep(model, inputs, pdrop, K)
            assert got == _reference_keep(rows, vision, K, k), f"pdrop K={K} keep={k}"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batch", [3, 8])
def test_fastv_and_pdrop_keep_the_reference_tokens_on_every_family(arch, batch):
    model = tiny.build(arch)
    eager = _eager(tiny.build(arch))
    inputs = tiny.make_inputs(model, arch, batch=batch, text_lengths=[3 + (5 * i) % 7 for i in range(batch)])
    assert (inputs["attention_mask"][:, 0] == 0).any()  # left-padded
    vision = inputs["input_ids"] == tiny.IMAGE_TOKEN
    n_vision = int(vision[0].sum())
    _check(model, eager, inputs, n_vision, vision)


def test_fastv_and_pdrop_keep_the_reference_tokens_on_the_testbed():
    from vtr.models import load, load_split
    from vtr.testbed.model import load_testbed

    runner = load("testbed")
    split = load_split("testbed", "test", 8)
    inputs = runner.inputs(split.samples, split)
    eager, _ = load_testbed()
    _eager(eager)
    vision = inputs["input_ids"] == runner.tok.image_id
    n = runner.n_vision
    _check(runner.model, eager, inputs, n, vision, layers=(1, 2, 4, 7), keeps=(n // 2, n // 4, n // 8))
