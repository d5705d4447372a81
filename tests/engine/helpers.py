"""Shared by the generation-path tests: a tiny model and left-padded inputs per family, greedy
generate() settings that return the per-step scores, exact and close comparisons, and a frozen
selection policy (the reference for pruned decoding: recompute every step from scratch with the
tokens the first prefill kept)."""
from __future__ import annotations

import contextlib

import torch

from vtr import tiny
from vtr.engine import PlanPolicy, Policy, prune
from vtr.plan import Plan

# a generated image token would count as a vision token when a step re-runs the whole sequence,
# and an assistant's candidate image token has no image features
BANNED = list(range(tiny.IMAGE_TOKEN, tiny.VOCAB))


def setup(arch: str, batch: int = 2, seed: int = 0):
    """(model, inputs without position_ids (generate() computes them), image tokens, layers)."""
    model = tiny.build(arch, seed=seed)
    inputs = tiny.make_inputs(model, arch, batch=batch)
    inputs.pop("position_ids", None)
    return model, inputs, tiny.n_image_tokens(model, arch), model.config.get_text_config().num_hidden_layers


def half_from(layer: int, model, arch: str) -> PlanPolicy:
    """Keeps half of the vision tokens from `layer` on."""
    n = tiny.n_image_tokens(model, arch)
    return PlanPolicy(Plan.drop_at(model.config.get_text_config().num_hidden_layers, n, layer, n // 2))


def run(model, inputs, policy: Policy | None = None, **kw):
    """(generate() output, the pruning session or None)."""
    kw = dict(max_new_tokens=4, do_sample=False, return_dict_in_generate=True, output_scores=True,
              pad_token_id=tiny.PAD, suppress_tokens=BANNED) | kw
    pruning = prune(model, policy) if policy is not None else contextlib.nullcontext(None)
    with pruning as session, torch.no_grad():
        return model.generate(**inputs, **kw), session


def generate(model, inputs, policy: Policy | None = None, **kw):
    return run(model, inputs, policy, **kw)[0]


def assert_same(got, ref):
    """Bit-identical tokens and per-step scores."""
    assert torch.equal(got.sequences, ref.sequences)
    assert len(got.scores) == len(ref.scores)
    for a, b in zip(got.scores, ref.scores):
        assert torch.equal(a, b)


def assert_close(got, ref, atol=1e-5):
    """Same tokens, scores equal up to float rounding (another order of the same sums)."""
    assert torch.equal(got.sequences, ref.sequences)
    assert len(got.scores) == len(ref.scores)
    for a, b in zip(got.scores, ref.scores):
        finite = torch.isfinite(b)
        assert torch.equal(finite, torch.isfinite(a))  # suppressed tokens: -inf in both
        torch.testing.assert_close(a[finite], b[finite], rtol=0, atol=atol)


class Frozen(Policy):
    """Wraps a policy: its first prefill records which vision tokens (by original index) each layer
    keeps; every later prefill keeps exactly those (generate(use_cache=False) re-runs the whole
    sequence each step, where the wrapped policy would score again with the new tokens)."""

    def __init__(self, inner: Policy):
        self.inner, self.record, self.prefills = inner, {}, 0

    def start(self, batch_size):
        self.prefills += 1
        self.inner.start(batch_size)

    def keep_before(self, layer, view):
        if self.prefills == 1:
            keep = self.inner.keep_before(layer, view)
            if keep is not None:
                self.record[layer] = [set(view.vision_index[b][keep[b] & view.vision[b]].tolist())
                                      for b in range(keep.shape[0])]
            return keep
        if layer not in self.record:
            return None
        keep = ~view.vision.clone()
        for b, kept in enumerate(self.record[layer]):
            keep[b] |= torch.isin(view.vision_index[b], torch.tensor(sorted(kept), dtype=torch.long))
        return keep
