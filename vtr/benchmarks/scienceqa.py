"""ScienceQA-IMG (Lu et al., NeurIPS 2022): the test problems that have an image, as LLaVA-1.5
evaluates them.

Official format: `problems.json` = {pid: {"question", "choices": [...], "answer": index, "hint",
"image": "image.png" | null, "split", "subject", "grade", ...}}, `pid_splits.json` =
{"train"|"val"|"test"|...: [pid, ...]}, images `{split}/{pid}/{image}` under the image root
(default: `folder/images` if it holds `{split}/`, else `folder`; or pass `images=`).
Prompt (LLaVA-1.5 / lmms-eval "default"): ["Context: {hint}\\n" when the hint is non-empty]
+ question + "\\nA. ...\\nB. ..." + "\\nAnswer with the option's letter from the given choices directly."
Metric: accuracy; the predicted letter is the first standalone capital among the valid option
letters (normalize.parse_letter); no letter counts as wrong (LLaVA's eval_science_qa.py likewise).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .jsonl import Sample, Split
from .normalize import LETTER_ANSWER, mean, paired, parse_letter, require

NAME = "scienceqa"
LETTERS = "ABCDE"


def options_block(choices: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def read(folder: Path | str, limit: int | None = None, split: str = "test",
         images: Path | str | None = None) -> Split:
    """Problems of `split` (in pid_splits order) that have an image; first `limit` of them."""
    folder = Path(folder)
    problems = json.loads(require(folder / "problems.json", "ScienceQA problems file").read_text())
    pids = json.loads(require(folder / "pid_splits.json", "ScienceQA splits file").read_text())[split]
    if images is None:  # the layout `folder/test/...`, or LLaVA's `folder/images/test/...`
        images = folder / "images" if (folder / "images" / split).is_dir() else folder
    root = Path(images)
    require(root / split, "ScienceQA image folder")
    samples = []
    for pid in [p for p in pids if problems[p].get("image")][:limit]:
        p = problems[pid]
        context = f"Context: {p['hint']}\n" if p.get("hint") else ""
        samples.append(Sample(id=str(pid), image=f"{split}/{pid}/{p['image']}",
                              question=f"{context}{p['question']}\n{options_block(p['choices'])}"
                                       + LETTER_ANSWER,
                              answer=LETTERS[p["answer"]], family=p.get("subject") or NAME,
                              meta={"pid": pid, **p}))
    return Split(root, samples)


def score(samples, predictions: list[str]) -> dict:
    """{"accuracy", "n", "per_subject": {subject: accuracy}}."""
    per = defaultdict(list)
    for s, p in zip(paired(samples, predictions), predictions):
        per[s.family].append(float(parse_letter(p, len(s.meta["choices"])) == s.answer))
    hits = [h for v in per.values() for h in v]
    return {"accuracy": mean(hits), "n": len(hits),
            "per_subject": {k: mean(v) for k, v in sorted(per.items())}}
