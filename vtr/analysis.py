"""Measurements behind the papers' findings, on any model the engine supports.

- `layer_scores`: the importance score of every vision token at every decoder layer (no pruning).
- `kendall_matrix`, `topk_overlap`: how consistently layers rank vision tokens (main paper).
- `attention_mass`: per layer, the attention text->image, image->image, text->text (DyVTE's stages).
- `cls_curves`: CLS similarity of the patches, sorted (the CLS-similarity paper's long tail).
- `bootstrap`: confidence intervals from resampled evaluation sets (per-sample correctness).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import kendalltau
from tqdm.auto import tqdm

from .engine import Policy, prune


class _ScoreRecorder(Policy):
    def __init__(self, query: str, heads: str = "mean"):
        self.query, self.heads, self.rows = query, heads, []

    def start(self, batch_size):
        self.rows.append({})

    def keep_before(self, layer, view):
        s = view.score(self.query, self.heads)
        vis = view.vision & view.valid
        order = torch.where(vis, view.vision_index, torch.iinfo(torch.long).max).argsort(1)
        n = int(vis.sum(1).min())
        self.rows[-1][layer] = torch.gather(s, 1, order[:, :n]).cpu()  # (B, N) in original token order
        return None


@torch.inference_mode()
def layer_scores(runner, split, query: str = "last", heads: str = "mean", batch_size: int = 32,
                 progress: bool = True) -> np.ndarray:
    """(samples, layers, N) attention score of each vision token (original order) at each layer input."""
    rec = _ScoreRecorder(query, heads)
    for i in tqdm(range(0, len(split), batch_size), desc=f"scores[{query}]", disable=not progress,
                  leave=False):
        inputs = runner.inputs(split.samples[i:i + batch_size], split)
        with prune(runner.model, rec):
            runner.logits(inputs)
    out = [torch.stack([batch[layer] for layer in sorted(batch)], 1) for batch in rec.rows]
    return torch.cat(out).numpy()


def region_lift(scores: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Per layer, mean over samples of (share of vision attention on a region) / (share of vision
    tokens in it): 1 = no preference. scores (samples, L, N) from `layer_scores`; masks name ->
    (samples, N) bool. Samples where a region is empty do not count for that region."""
    p = scores / scores.sum(-1, keepdims=True)
    out = {}
    for name, m in masks.items():
        m = m.astype(float)
        frac = m.mean(-1)
        ok = frac > 0
        if not ok.any():
            out[name] = [float("nan")] * p.shape[1]
            continue
        share = (p * m[:, None]).sum(-1)  # (samples, L)
        out[name] = (share[ok] / frac[ok, None]).mean(0).tolist()
    return out


def kendall_per_sample(scores: np.ndarray) -> np.ndarray:
    """(samples, L, N) -> (samples, L, L) Kendall's tau between every pair of layers' rankings."""
    S, L, _ = scores.shape
    out = np.ones((S, L, L))
    for s in range(S):
        for i in range(L):
            for j in range(i + 1, L):
                tau = kendalltau(scores[s, i], scores[s, j]).statistic
                out[s, i, j] = out[s, j, i] = 0.0 if np.isnan(tau) else tau
    return out


def topk_overlap(scores: np.ndarray, k: int) -> np.ndarray:
    """(samples, L, N) -> (L, L) mean |top-k(layer i) & top-k(layer j)| / k."""
    top = np.argsort(-scores, axis=2, kind="stable")[:, :, :k]
    S, L, N = scores.shape
    member = np.zeros((S, L, N), dtype=bool)
    np.put_along_axis(member, top, True, axis=2)
    inter = np.einsum("sin,sjn->sij", member.astype(float), member.astype(float))
    return inter.mean(0) / k


class _MassRecorder(Policy):
    def __init__(self):
        self.rows = []

    def keep_before(self, layer, view):
        allq = view.valid
        probs, rows, row_valid = view.attention(allq)  # (B, H, Q, T), rows are all valid positions
        p = probs.mean(1)  # (B, Q, T)
        vis_k = view.vision & view.valid
        text_k = ~view.vision & view.valid
        row_is_vis = torch.gather(view.vision, 1, rows) & row_valid
        row_is_text = torch.gather(view.text_query, 1, rows) & row_valid
        to_vis = (p * vis_k[:, None]).sum(-1)
        to_text = (p * text_k[:, None]).sum(-1)
        def mean(v, m):
            return float((v * m).sum() / m.sum().clamp_min(1))
        self.rows.append({"layer": layer, "text_to_image": mean(to_vis, row_is_text),
                          "image_to_image": mean(to_vis, row_is_vis),
                          "text_to_text": mean(to_text, row_is_text), "n": int(view.valid.shape[0])})
        return None


@torch.inference_mode()
def attention_mass(runner, split, batch_size: int = 16, progress: bool = True) -> list[dict]:
    """Per layer: mean attention mass text->image, image->image and text->text (heads averaged)."""
    rec = _MassRecorder()
    for i in tqdm(range(0, len(split), batch_size), desc="attention mass", disable=not progress, leave=False):
        inputs = runner.inputs(split.samples[i:i + batch_size], split)
        with prune(runner.model, rec):
            runner.logits(inputs)
    layers = sorted({r["layer"] for r in rec.rows})
    out = []
    for layer in layers:
        rs = [r for r in rec.rows if r["layer"] == layer]
        w = np.array([r["n"] for r in rs], dtype=float)
        out.append({"layer": layer, **{k: float(np.average([r[k] for r in rs], weights=w))
                                   for k in ("text_to_image", "image_to_image", "text_to_text")}})
    return out


class _ClsRecorder(Policy):
    def __init__(self, kind: str):
        self.kind, self.rows = kind, []

    def encoder_step(self, view):
        s = view.cls_similarity() if self.kind == "similarity" else view.cls_attention()
        self.rows.append(s.cpu())
        return None


@torch.inference_mode()
def cls_curves(runner, split, kind: str = "similarity", batch_size: int = 32) -> np.ndarray:
    """(samples, N) CLS similarity (or CLS attention) of every patch, original order."""
    rec = _ClsRecorder(kind)
    for i in range(0, len(split), batch_size):
        inputs = runner.inputs(split.samples[i:i + batch_size], split)
        with prune(runner.model, rec):
            runner.logits(inputs)
    return torch.cat(rec.rows).numpy()


def bootstrap(correct: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Mean and percentile CI of per-sample correctness over resampled evaluation sets."""
    rng = np.random.default_rng(seed)
    correct = np.asarray(correct, dtype=float)
    means = correct[rng.integers(0, len(correct), size=(n_boot, len(correct)))].mean(1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return {"mean": float(correct.mean()), "lo": float(lo), "hi": float(hi), "std": float(means.std())}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """CI of mean(a) - mean(b) for paired per-sample correctness (same questions)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return bootstrap(d, n_boot, seed)
