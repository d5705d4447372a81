"""MMBench (Liu et al., ECCV 2024), official TSV (e.g. `mmbench_dev_20230712.tsv`,
`MMBench_DEV_EN.tsv`), as LLaVA-1.5 evaluates it.

Official format: tab-separated, header with at least index, question, hint, A, B, C, D, answer,
category, l2-category, image (base64 PNG/JPEG). A row whose image field is short (<= 64 chars) names
the index of the row holding the image, as in VLMEvalKit. Options are taken from A, B, C, D up to the
first empty / "nan" / "none" one (LLaVA's model_vqa_mmbench.py).
Prompt: [hint + "\\n"] + question + "\\nA. ..." per option + "\\nAnswer with the option's letter
from the given choices directly."
Metric: accuracy of the letter (normalize.parse_letter) over the rows read, per category too.
CircularEval: `read(..., circular=True)` adds, for each question of n options, the n-1 rotations
(round k shows option (j + k) mod n at letter j, the order of LLaVA's --all-rounds) with index
+ k * 1e6; `score` then also reports `circular_accuracy`, the share of questions (index mod 1e6)
right in every rotation. The official answer extraction by ChatGPT for free-form replies is not
implemented: replies without a valid letter are wrong.
"""
from __future__ import annotations

import base64
import csv
import io
import sys
from collections import defaultdict
from pathlib import Path

from PIL import Image

from .jsonl import Sample, Split
from .normalize import LETTER_ANSWER, mean, paired, parse_letter, require

NAME = "mmbench"
LETTERS = "ABCD"
CIRCULAR_STRIDE = 1_000_000


class Base64Split(Split):
    """A Split whose images are base64 strings from the TSV, decoded on first use."""

    def __init__(self, folder, samples, encoded: dict[str, str]):
        super().__init__(folder, samples)
        self.encoded = encoded

    def image(self, sample: Sample) -> Image.Image:
        if sample.image not in self._cache:
            with Image.open(io.BytesIO(base64.b64decode(self.encoded[sample.image]))) as im:
                self._cache[sample.image] = im.convert("RGB")
        return self._cache[sample.image]

    def subset(self, n: int | None) -> "Base64Split":
        return self if n is None else Base64Split(self.folder, self.samples[:n], self.encoded)


def _present(value: str | None) -> bool:
    return value is not None and value.strip() != "" and value.strip().lower() not in ("nan", "none")


def _sample(row: dict, options: list[str], answer: str, index: int, rnd: int) -> Sample:
    question = (row["hint"] + "\n" if _present(row.get("hint")) else "") + row["question"]
    question += "".join(f"\n{LETTERS[j]}. {o}" for j, o in enumerate(options)) + LETTER_ANSWER
    meta = {k: v for k, v in row.items() if k != "image"}
    meta.update(index=index, round=rnd, options=options)
    return Sample(id=str(index), image=str(int(row["index"])), question=question, answer=answer,
                  family=row.get("category") or NAME, meta=meta)


def read(path: Path | str, limit: int | None = None, circular: bool = False) -> Base64Split:
    """The rows of the TSV at `path` (first `limit` rows, before any circular expansion)."""
    path = require(path, "MMBench TSV file")
    csv.field_size_limit(sys.maxsize)  # base64 images are far larger than csv's default limit
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    encoded = {str(int(r["index"])): r["image"] for r in rows}
    for key, value in encoded.items():
        if len(value) <= 64:  # a reference to the row that carries this image
            encoded[key] = encoded[str(int(value))]
    samples = []
    for row in rows[:limit]:
        options = []
        for letter in LETTERS:
            if not _present(row.get(letter)):
                break
            options.append(row[letter])
        answer, index = (row.get("answer") or "").strip(), int(row["index"])
        for k in range(len(options) if circular else 1):
            shown = options[k:] + options[:k]
            moved = LETTERS[(LETTERS.index(answer) - k) % len(options)] if answer in LETTERS else answer
            samples.append(_sample(row, shown, moved, index + k * CIRCULAR_STRIDE, k))
    return Base64Split(path.parent, samples, encoded)


def score(samples, predictions: list[str]) -> dict:
    """{"accuracy", "n", "per_category", and "circular_accuracy" when some question has several
    rotations}."""
    per, groups = defaultdict(list), defaultdict(list)
    for s, p in zip(paired(samples, predictions), predictions):
        hit = parse_letter(p, len(s.meta["options"])) == s.answer
        per[s.family].append(float(hit))
        groups[int(s.id) % CIRCULAR_STRIDE].append(hit)
    hits = [h for v in per.values() for h in v]
    out = {"accuracy": mean(hits), "n": len(hits),
           "per_category": {k: mean(v) for k, v in sorted(per.items())}}
    if any(len(g) > 1 for g in groups.values()):
        out["circular_accuracy"] = mean(all(g) for g in groups.values())
    return out
