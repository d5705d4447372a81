"""What the method tests share: a tiny model with its ModelInfo, one prefill through the engine,
recording what a policy keeps at each layer, and the budget tests' tolerance."""
import torch

from vtr import tiny
from vtr.engine import prune
from vtr.flops import DecoderShape
from vtr.methods import ModelInfo, model_info
from vtr.plan import Plan

BIG = ModelInfo(32, 576, 64, DecoderShape(hidden=4096, intermediate=11008, n_layers=32))   # LLaVA-1.5-7B
N_TEXT = 8


def setup(arch, batch=3):
    """(model, inputs, info) for the tiny `arch` model; info.n_vision = image tokens per sample."""
    model = tiny.build(arch)
    n = tiny.n_image_tokens(model, arch)
    return model, tiny.make_inputs(model, arch, batch=batch), model_info(model, n, n_text=N_TEXT)


def run_stats(model, inp, policy):
    """(logits, session stats) of one prefill with `policy` installed."""
    with torch.no_grad(), prune(model, policy) as session:
        logits = model(**inp).logits
    return logits, session.last_stats


def run(model, inp, policy):
    """Logits of one prefill with `policy` installed."""
    return run_stats(model, inp, policy)[0]


def one_token_per_layer(info, kind):
    """How far below a budget a plan may stay: the cost of one vision token at every layer."""
    if kind == "keep":
        return 1 / info.n_vision
    return 1 - info.cost(Plan(((info.n_vision - 1),) * info.n_layers, info.n_vision), kind)


def check_vision_at_layer0(stats, inp, n, counts):
    """Decoder layer 0 received counts[b] of sample b's n vision tokens: checked in total, and per
    sample where the engine reports per-sample counts."""
    text = int(inp["attention_mask"].sum()) - n * inp["attention_mask"].shape[0]
    assert stats["tokens_per_layer"][0] - text == sum(counts)
    if "vision_counts" in stats:
        assert stats["vision_counts"][:, 0].tolist() == list(counts)


def spy(policy, record, every_layer=False):
    """Wrap `policy.keep_before` (on this instance only) so that each mask it returns, or every call
    with every_layer=True, appends record(layer, view, keep) to the returned list."""
    log, inner = [], policy.keep_before

    def keep_before(layer, view):
        keep = inner(layer, view)
        if keep is not None or every_layer:
            log.append(record(layer, view, keep))
        return keep
    policy.keep_before = keep_before
    return log


def kept_indices(layer, view, keep):
    """(layer, sorted original vision indices kept, per sample)."""
    vis = view.vision & view.valid
    return layer, [sorted(view.vision_index[b][keep[b] & vis[b]].tolist()) for b in range(keep.shape[0])]


def vision_counts(layer, view, keep):
    """Vision tokens per sample that the layer receives (use with every_layer=True)."""
    return view.n_vision.tolist() if keep is None else (keep & view.vision & view.valid).sum(1).tolist()


def masks(layer, view, keep):
    """(layer, keep, vision, valid), cloned."""
    return layer, keep.clone(), view.vision.clone(), view.valid.clone()


def no_knee(curves):
    """A CLS-knee detector that finds no knee: every token stays in stage 1."""
    return torch.full((curves.shape[0],), curves.shape[1])
