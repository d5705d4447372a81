"""GQA testdev-balanced (Hudson & Manning, CVPR 2019), as LLaVA-1.5 evaluates it.

Official format: `testdev_balanced_questions.json` = {question_id: {"imageId", "question",
"answer", "fullAnswer", "types": {"structural", "semantic", "detailed"}, ...}} and the image folder
`images/{imageId}.jpg`. Prompt: the question + "\\nAnswer the question using a single word or
phrase." Metric: exact-match accuracy (the official GQA eval.py "accuracy"), after LLaVA's
prediction clean-up (lowercase, trailing period removed), here extended to strip surrounding
whitespace and punctuation of prediction and answer; no article or number-word mapping (that is
VQA's normalisation, not GQA's). Also reported per structural type, as eval.py does.
"""
from __future__ import annotations

import json
import string
from collections import defaultdict
from pathlib import Path

from .jsonl import Sample, Split
from .normalize import SHORT_ANSWER, mean, paired, require

NAME = "gqa"
QUESTIONS = "testdev_balanced_questions.json"


def read(folder: Path | str, limit: int | None = None, questions: str = QUESTIONS,
         images: Path | str | None = None) -> Split:
    """`folder/questions` + images in `images` (default `folder/images`); first `limit` questions."""
    folder = Path(folder)
    data = json.loads(require(folder / questions, "GQA questions file").read_text())
    images = require(Path(images) if images else folder / "images", "GQA image folder")
    samples = []
    for qid, q in list(data.items())[:limit]:
        structural = (q.get("types") or {}).get("structural") or "gqa"
        samples.append(Sample(id=str(qid), image=f"{q['imageId']}.jpg",
                              question=q["question"] + SHORT_ANSWER, answer=q["answer"],
                              family=structural, meta={"question_id": qid, **q}))
    return Split(images, samples)


def clean(text: str) -> str:
    return text.strip().lower().strip(string.punctuation + string.whitespace)


def score(samples, predictions: list[str]) -> dict:
    """{"accuracy", "n", "per_type": {structural type: accuracy}}."""
    per = defaultdict(list)
    for s, p in zip(paired(samples, predictions), predictions):
        per[s.family].append(float(clean(p) == clean(s.answer)))
    hits = [h for v in per.values() for h in v]
    return {"accuracy": mean(hits), "n": len(hits),
            "per_type": {k: mean(v) for k, v in sorted(per.items())}}
