"""Attention scores a policy asks for at a layer boundary (`LayerView.score` / `.attention`, and
the keys behind them, `.keys`),
computed lazily, only when asked, for the query rows only, from a layer's own q/k projections on
its input (what `output_attentions` would return for it). "current" reads the layer about to run;
"previous" the layer before it, on the input it received (the engine keeps a reference to it until
the end of the prefill; layer 0 has none and reads its own).

Results are memoised in `Prefill.scored` within one layer's hook only: they are keyed partly by
id(hidden states), and Python reuses the id of a freed tensor."""
from __future__ import annotations

import torch

from .. import scores as S


def query_rows(st, query, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows (B, Q) positions, row_valid (B, Q)) for a query kind or a (B, T) bool mask of rows."""
    if isinstance(query, torch.Tensor):
        sel = query & st.valid
    elif query == "last":
        last = st.last.long().argmax(1)
        return last[:, None], torch.ones(len(last), 1, dtype=torch.bool, device=device)
    elif query == "text_mean":
        sel = st.text_query
    else:
        raise ValueError(f"unknown query kind {query!r}; expected one of {S.QUERY_KINDS} or a bool mask")
    n = sel.sum(1)
    width = max(1, int(n.max()))
    rows = torch.sort(sel.long(), dim=1, descending=True, stable=True).indices[:, :width]
    return rows, torch.arange(width, device=device)[None] < n[:, None]


def rope(x, cos, sin):
    """Rotary embedding of x (B, T, H, D) with cos/sin (B, T, D) (the rotate-half convention)."""
    cos, sin = cos[:, :, None], sin[:, :, None]
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return torch.addcmul(x * cos, rot, sin)


def attention(st, layer, hidden, pe, query):
    """Attention probabilities (B, H, Q, T) of the query rows of prefill state `st`, from `layer`'s own
    q/k projections on its input `hidden` with its rotary (cos, sin) `pe`; with the rows and their
    validity."""
    key = ("attn", id(hidden), query if isinstance(query, str) else id(query))
    if key in st.scored:
        return st.scored[key]
    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    B, T, _ = x.shape
    hd = attn.head_dim
    rows, row_valid = query_rows(st, query, x.device)
    xq = torch.gather(x, 1, rows[..., None].expand(-1, -1, x.shape[-1]))
    # RoPE in the projections' own (B, T, H, D) layout: contiguous, no transpose copies
    q = attn.q_proj(xq).view(B, rows.shape[1], -1, hd)
    k = attn.k_proj(x).view(B, T, -1, hd)
    cos, sin = pe
    cos, sin = cos.expand(B, -1, -1), sin.expand(B, -1, -1)
    idx = rows[..., None].expand(-1, -1, cos.shape[-1])
    q = rope(q, torch.gather(cos, 1, idx), torch.gather(sin, 1, idx)).transpose(1, 2)
    k = rope(k, cos, sin).transpose(1, 2)
    ar = torch.arange(T, device=x.device)
    allowed = (ar[None, None] <= rows[..., None]) & st.valid[:, None]
    out = (S.attention_probs(q, k, allowed, attn.scaling), rows, row_valid)
    st.scored[key] = out
    return out


def keys(st, layer, hidden, pe) -> torch.Tensor:
    """(B, H_kv, T, D) keys of `layer` on its input `hidden`, rotary (cos, sin) `pe` applied."""
    key = ("keys", id(hidden))
    if key in st.scored:
        return st.scored[key]
    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    B, T, _ = x.shape
    cos, sin = pe
    k = attn.k_proj(x).view(B, T, -1, attn.head_dim)
    k = rope(k, cos.expand(B, -1, -1), sin.expand(B, -1, -1)).transpose(1, 2)
    st.scored[key] = k
    return k


def score(st, layer, hidden, pe, query, heads: str) -> torch.Tensor:
    """(B, T) mean attention of the query rows onto each vision position (0 elsewhere)."""
    probs, rows, row_valid = attention(st, layer, hidden, pe, query)
    return S.reduce_queries(S.reduce_heads(probs, heads), row_valid) * st.vision
