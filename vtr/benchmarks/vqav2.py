"""VQAv2 (Goyal et al., CVPR 2017), as LLaVA-1.5 evaluates it (on a split with public answers).

Official format: `v2_OpenEnded_mscoco_{split}_questions.json` = {"questions": [{"question_id",
"image_id", "question"}]}, `v2_mscoco_{split}_annotations.json` = {"annotations": [{"question_id",
"image_id", "answer_type", "question_type", "multiple_choice_answer", "answers": [10 x {"answer",
"answer_confidence", "answer_id"}]}]}, images `{split}/COCO_{split}_{image_id:012d}.jpg`.
Prompt: question + "\\nAnswer the question using a single word or phrase."
Metric: the standard VQA accuracy (normalize.vqa_accuracy), overall and per answer type
("yes/no", "number", "other"). LLaVA-1.5 reports test-dev through the EvalAI server, which has no
local answers; the readers default to val2014. The official script normalises the references only
with the punctuation step (and only when they disagree); here both sides get the full
normalisation, which changes nothing for the already-normalised VQAv2 references.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .jsonl import Sample, Split
from .normalize import SHORT_ANSWER, mean, paired, require, vqa_accuracy

NAME = "vqav2"


def read(folder: Path | str, limit: int | None = None, split: str = "val2014",
         images: Path | str | None = None) -> Split:
    """Questions joined with their annotations; images in `images` (default `folder/{split}`)."""
    folder = Path(folder)
    qpath = require(folder / f"v2_OpenEnded_mscoco_{split}_questions.json", "VQAv2 questions file")
    apath = require(folder / f"v2_mscoco_{split}_annotations.json", "VQAv2 annotations file")
    images = require(Path(images) if images else folder / split, "VQAv2 (COCO) image folder")
    questions = json.loads(qpath.read_text())["questions"][:limit]
    annotations = {a["question_id"]: a for a in json.loads(apath.read_text())["annotations"]}
    samples = []
    for q in questions:
        a = annotations.get(q["question_id"])
        if a is None:
            raise ValueError(f"question {q['question_id']} has no annotation in {apath}")
        samples.append(Sample(id=str(q["question_id"]),
                              image=f"COCO_{split}_{q['image_id']:012d}.jpg",
                              question=q["question"] + SHORT_ANSWER,
                              answer=[x["answer"] for x in a["answers"]], family=a["answer_type"],
                              meta={**q, **a}))
    return Split(images, samples)


def score(samples, predictions: list[str]) -> dict:
    """{"accuracy", "n", "per_answer_type": {type: accuracy}}."""
    per = defaultdict(list)
    for s, p in zip(paired(samples, predictions), predictions):
        per[s.family].append(vqa_accuracy(p, s.answer))
    accs = [x for v in per.values() for x in v]
    return {"accuracy": mean(accs), "n": len(accs),
            "per_answer_type": {k: mean(v) for k, v in sorted(per.items())}}
