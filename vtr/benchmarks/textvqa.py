"""TextVQA v0.5.1 validation (Singh et al., CVPR 2019), as LLaVA-1.5 evaluates it.

Official format: `TextVQA_0.5.1_val.json` = {"data": [{"question_id", "image_id", "question",
"answers": [10 strings], ...}]}; the val images live in `train_images/{image_id}.jpg`.
Prompt: the question [+ "\\nReference OCR token: t1, t2, ..."] + "\\nAnswer the question using a
single word or phrase." LLaVA-1.5's reported TextVQA numbers use the OCR line, built from the Rosetta
OCR tokens (`TextVQA_Rosetta_OCR_v0.2_val.json`, {"data": [{"image_id", "ocr_tokens"}]}): pass that
file as `ocr_file` to get it; without it the prompt has no OCR line (the line is also left out for
images without tokens).
Metric: the standard VQA accuracy (normalize.vqa_accuracy), as in the m4c TextVQA evaluator.
"""
from __future__ import annotations

import json
from pathlib import Path

from .jsonl import Sample, Split
from .normalize import SHORT_ANSWER, mean, paired, require, vqa_accuracy

NAME = "textvqa"
QUESTIONS = "TextVQA_0.5.1_val.json"


def read(folder: Path | str, limit: int | None = None, ocr_file: Path | str | None = None) -> Split:
    """`folder/TextVQA_0.5.1_val.json` + `folder/train_images`; first `limit` questions."""
    folder = Path(folder)
    data = json.loads(require(folder / QUESTIONS, "TextVQA questions file").read_text())["data"]
    images = require(folder / "train_images", "TextVQA image folder")
    ocr = {}
    if ocr_file is not None:
        rows = json.loads(require(ocr_file, "TextVQA OCR file").read_text())["data"]
        ocr = {r["image_id"]: r.get("ocr_tokens") or [] for r in rows}
    samples = []
    for q in data[:limit]:
        tokens = ocr.get(q["image_id"], [])
        ocr_line = f"\nReference OCR token: {', '.join(tokens)}" if tokens else ""
        samples.append(Sample(id=str(q["question_id"]), image=f"{q['image_id']}.jpg",
                              question=q["question"] + ocr_line + SHORT_ANSWER,
                              answer=list(q["answers"]), family=NAME,
                              meta={**q, "ocr_tokens": tokens}))
    return Split(images, samples)


def score(samples, predictions: list[str]) -> dict:
    """{"accuracy", "n"}: mean VQA accuracy."""
    accs = [vqa_accuracy(p, s.answer) for s, p in zip(paired(samples, predictions), predictions)]
    return {"accuracy": mean(accs), "n": len(accs)}
