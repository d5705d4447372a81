"""POPE (Li et al., EMNLP 2023), COCO splits, as LLaVA-1.5 evaluates it.

Official format: `coco_pope_{random,popular,adversarial}.json`, each JSON lines of
{"question_id", "image", "text", "label": "yes"|"no"}, over COCO val2014 images (default folder
`folder/val2014`). Prompt: text + "\\nAnswer the question using a single word or phrase."
Metric (LLaVA's eval_pope.py, positive class = "yes"), per split: accuracy, precision, recall, F1,
yes-ratio; plus their means over the splits read (LLaVA-1.5 reports the mean F1 / accuracy).
Answer parsing as eval_pope.py: keep the text before the first ".", drop commas, split on spaces;
"No", "no" or "not" among the words -> no, anything else -> yes.
"""
from __future__ import annotations

import json
from pathlib import Path

from .jsonl import Sample, Split
from .normalize import SHORT_ANSWER, mean, paired, require

NAME = "pope"
SPLITS = ("random", "popular", "adversarial")


def read(folder: Path | str, limit: int | None = None, images: Path | str | None = None,
         splits: tuple[str, ...] = SPLITS) -> Split:
    """All questions of `splits` (`limit` applies per split file, so every split stays scored)."""
    folder = Path(folder)
    images = require(Path(images) if images else folder / "val2014", "POPE (COCO val2014) image folder")
    samples = []
    for split in splits:
        path = require(folder / f"coco_pope_{split}.json", f"POPE {split} file")
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for r in rows[:limit]:
            samples.append(Sample(id=f"{split}-{r['question_id']}", image=r["image"],
                                  question=r["text"] + SHORT_ANSWER, answer=r["label"],
                                  family=split, meta={"split": split, **r}))
    return Split(images, samples)


def parse_yes_no(text: str) -> str:
    """LLaVA's POPE answer parser (see the module docstring)."""
    words = text.split(".")[0].replace(",", "").split(" ")
    return "no" if {"No", "no", "not"} & set(words) else "yes"


def binary_metrics(labels: list[str], preds: list[str]) -> dict:
    tp = sum(label == "yes" and p == "yes" for label, p in zip(labels, preds))
    fp = sum(label == "no" and p == "yes" for label, p in zip(labels, preds))
    tn = sum(label == "no" and p == "no" for label, p in zip(labels, preds))
    fn = sum(label == "yes" and p == "no" for label, p in zip(labels, preds))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / len(labels), "precision": precision, "recall": recall, "f1": f1,
            "yes_ratio": (tp + fp) / len(labels), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "n": len(labels)}


def score(samples, predictions: list[str]) -> dict:
    """{split: {accuracy, precision, recall, f1, yes_ratio, tp, fp, tn, fn, n}, "f1", "accuracy"
    (means over splits), "n"}. Precision/recall/F1 are 0 where undefined (eval_pope.py divides by 0)."""
    by_split: dict[str, tuple[list, list]] = {}
    for s, p in zip(paired(samples, predictions), predictions):
        labels, preds = by_split.setdefault(s.family, ([], []))
        labels.append(s.answer)
        preds.append(parse_yes_no(p))
    out = {split: binary_metrics(*lp) for split, lp in by_split.items()}
    out.update(f1=mean(m["f1"] for m in out.values()),
               accuracy=mean(m["accuracy"] for m in out.values()), n=len(predictions))
    return out
