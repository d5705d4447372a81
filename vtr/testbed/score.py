"""Scoring the testbed's answers: exact match per family, POPE-style F1 for existence, and the record
`vtr testbed eval` prints (with the image and with a blank one). Answers come from
`vtr.testbed.runner.TestbedRunner` (argmax of the next-token logits at the trigger)."""
from __future__ import annotations

from collections import defaultdict

from ..benchmarks.jsonl import Sample


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


def with_blank(real: dict, blank: dict) -> dict:
    """The `vtr testbed eval` record from the metrics with the image and with a blank one."""
    return {"overall": real["overall"], "families": real["families"], "exist_f1": real.get("exist_f1"),
            "blank_image": {"overall": blank["overall"], "families": blank["families"]}, "n": real["n"]}


def accuracy(runner, split, batch_size: int = 64, progress: bool = True, real: dict | None = None) -> dict:
    """What `vtr testbed eval` prints: the metrics with the image and with a blank image (`with_blank`).
    `real`: metrics with the image already computed (the book's shared unpruned run). With the
    runner's image memo: every full batch of blank images is one tensor, encoded once."""
    from ..evaluation import evaluate

    features = runner.feature_cache() if runner.shares_images else None
    if real is None:
        real = evaluate(runner, split, batch_size=batch_size, progress=progress, features=features)["metrics"]
    blank = evaluate(runner, split, batch_size=batch_size, progress=progress, blank=True,
                     features=features)["metrics"]
    return with_blank(real, blank)
