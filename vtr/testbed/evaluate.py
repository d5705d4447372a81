"""Scoring the testbed model: one forward pass per batch, answer = argmax of the next-token logits
at the trigger (exact match, whole vocabulary: no answer-set constraint)."""
from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from ..benchmarks.jsonl import Sample, Split
from . import scenes
from .model import WordTokenizer, batch_prompts, n_image_tokens, pixel_values


def batches(split: Split, batch_size: int, n_img: int, blank: bool = False) -> Iterable[tuple[list[Sample], dict]]:
    """Model inputs for consecutive slices of a split (left-padded, as for generation);
    `n_img` image tokens per prompt."""
    tok = WordTokenizer()
    for i in range(0, len(split), batch_size):
        chunk = split.samples[i:i + batch_size]
        ids, mask = batch_prompts(tok, [s.question for s in chunk], n_img)
        imgs = [scenes.blank_image() if blank else split.image(s) for s in chunk]
        yield chunk, {"input_ids": ids, "attention_mask": mask, "pixel_values": pixel_values(imgs)}


@torch.inference_mode()
def predict(model, split: Split, batch_size: int = 64, blank: bool = False,
            around: Callable[[], contextlib.AbstractContextManager] | None = None,
            progress: bool = False) -> list[str]:
    """Predicted answer word for each sample. `around()` wraps every forward (e.g. a pruning patch)."""
    tok = WordTokenizer()
    out = []
    it = batches(split, batch_size, n_image_tokens(model), blank)
    if progress:
        it = tqdm(it, total=-(-len(split) // batch_size), desc="eval", leave=False)
    for chunk, inputs in it:
        with (around() if around else contextlib.nullcontext()):
            logits = model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1]
        out += [tok.vocab[i] for i in logits.argmax(-1).tolist()]
    return out


def summarise(samples: list[Sample], predictions: list[str]) -> dict:
    """Accuracy overall and per family, plus POPE-style F1 for `exist` (positive = yes)."""
    if len(samples) != len(predictions):
        raise ValueError(f"{len(samples)} samples but {len(predictions)} predictions")
    hits = defaultdict(list)
    for s, p in zip(samples, predictions):
        hits[s.family].append(float(p == s.answer))
    fams = {f: sum(v) / len(v) for f, v in sorted(hits.items())}
    out = {"overall": sum(sum(v) for v in hits.values()) / max(1, len(samples)), "families": fams,
           "n": len(samples)}
    ex = [(s.answer, p) for s, p in zip(samples, predictions) if s.family == "exist"]
    if ex:
        tp = sum(a == "yes" and p == "yes" for a, p in ex)
        fp = sum(a == "no" and p == "yes" for a, p in ex)
        fn = sum(a == "yes" and p != "yes" for a, p in ex)
        out["exist_f1"] = 2 * tp / max(1, 2 * tp + fp + fn)
    return out
