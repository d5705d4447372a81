"""Block expansion: a deeper testbed decoder initialised from a trained one (`Recipe.expand_from`).

How the 16-layer testbed is made: from a random start its decoder did not bind questions to objects
within the 8-layer recipe's steps (data/testbed/ablations/deep16-from-scratch/NOTES.md).
"""
from __future__ import annotations

import torch


def expand_decoder(model, source) -> None:
    """Initialise `model`'s projector, embeddings, decoder, norm and LM head from `source`, a testbed
    with a divisor of this decoder's depth, by block expansion (LLaMA Pro, Wu et al. 2024): source
    layer i becomes layers r i .. r i + r - 1 (r = depth ratio), each a copy of it, the copies after
    the first with their attention output and MLP down projections zeroed, so that they start as the
    identity (a pre-norm residual block whose outputs are zero) and the expanded model computes
    exactly what `source` computes. Training then moves every layer, the new ones from there."""
    src, dst = source.model.language_model, model.model.language_model
    n_src, n_dst = len(src.layers), len(dst.layers)
    if n_dst % n_src:
        raise ValueError(f"block expansion needs a multiple of the source depth: {n_dst} layers from {n_src}")
    r = n_dst // n_src
    with torch.no_grad():
        for i, layer in enumerate(src.layers):
            for j in range(r):
                new = dst.layers[r * i + j]
                new.load_state_dict(layer.state_dict())
                if j:
                    for proj in (new.self_attn.o_proj, new.mlp.down_proj):
                        proj.weight.zero_()
                        if proj.bias is not None:
                            proj.bias.zero_()
        dst.embed_tokens.load_state_dict(src.embed_tokens.state_dict())
        dst.norm.load_state_dict(src.norm.state_dict())
        model.lm_head.load_state_dict(source.lm_head.state_dict())
        model.model.multi_modal_projector.load_state_dict(source.model.multi_modal_projector.state_dict())
