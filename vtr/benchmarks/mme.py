"""MME (Fu et al., arXiv 2306.13394), as LLaVA-1.5 evaluates it.

Official format (MME_Benchmark_release_version): one folder per subtask. Five subtasks (artwork,
celebrity, landmark, posters, scene) hold `images/{name}.jpg` and `questions_answers_YN/{name}.txt`;
the others hold `{name}.jpg|.png` next to `{name}.txt`. Each txt line is "question<TAB>Yes|No",
two questions per image. Prompt: the question (it already ends "Please answer yes or no.") +
"\\nAnswer the question using a single word or phrase."

Metric (the official eval_tool/calculation.py): the prediction is lowercased; "yes"/"no" as is,
else "yes" / "no" found in its first 4 characters, else "other" (always wrong). Per subtask:
acc = right questions / questions, acc+ = images with every question right / images,
score = (acc + acc+) * 100 (max 200). Perception = sum over the 10 perception subtasks (max 2000),
cognition = sum over the 4 cognition subtasks (max 800); sums cover the subtasks present.
"""
from __future__ import annotations

import errno
from collections import defaultdict
from pathlib import Path

from .jsonl import Sample, Split
from .normalize import SHORT_ANSWER, mean, paired, require

NAME = "mme"
PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene",
              "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
SUBTASKS = PERCEPTION + COGNITION
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg")


def _image_for(folder: Path, stem: str) -> Path:
    for ext in IMAGE_EXTENSIONS:
        if (folder / (stem + ext)).exists():
            return folder / (stem + ext)
    expected = f"{folder / stem}{{{','.join(IMAGE_EXTENSIONS)}}}"  # e.g. .../count/0001{.jpg,.png,.jpeg}
    raise FileNotFoundError(errno.ENOENT, "MME image not found", expected)


def read_subtask(root: Path, subtask: str) -> list[Sample]:
    folder = require(root / subtask, f"MME subtask folder {subtask!r}")
    if (folder / "questions_answers_YN").is_dir():
        texts, images = folder / "questions_answers_YN", require(folder / "images", "MME image folder")
    else:
        texts = images = folder
    samples = []
    for txt in sorted(texts.glob("*.txt")):
        image = _image_for(images, txt.stem).relative_to(root).as_posix()
        lines = [line for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()]
        category = "perception" if subtask in PERCEPTION else "cognition"
        for k, line in enumerate(lines):
            if "\t" not in line:
                raise ValueError(f"{txt}, line {k + 1}: expected 'question<TAB>Yes|No', got {line!r}")
            question, answer = (x.strip() for x in line.rsplit("\t", 1))
            samples.append(Sample(id=f"{subtask}/{txt.stem}/{k}", image=image,
                                  question=question + SHORT_ANSWER, answer=answer.lower(),
                                  family=subtask,
                                  meta={"subtask": subtask, "image_name": Path(image).name,
                                        "category": category,
                                        "question": question, "answer": answer}))
    return samples


def read(folder: Path | str, limit: int | None = None,
         subtasks: tuple[str, ...] = SUBTASKS) -> Split:
    """The questions of `subtasks` in the official order; first `limit` questions overall."""
    root = Path(folder)
    samples = [s for t in subtasks for s in read_subtask(root, t)]
    return Split(root, samples[:limit])


def parse_yes_no(text: str) -> str:
    """The official MME parser: 'yes' / 'no' / 'other' (see the module docstring)."""
    text = text.strip().lower()
    if text in ("yes", "no"):
        return text
    return "yes" if "yes" in text[:4] else "no" if "no" in text[:4] else "other"


def score(samples, predictions: list[str]) -> dict:
    """{"subtasks": {name: {acc, acc_plus, score}}, "perception", "cognition", "total", "n"}."""
    per_image: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for s, p in zip(paired(samples, predictions), predictions):
        per_image[s.family][s.image].append(parse_yes_no(p) == s.answer)
    subtasks = {}
    for t in [t for t in SUBTASKS if t in per_image] + [t for t in per_image if t not in SUBTASKS]:
        images = per_image[t].values()
        acc = mean(h for hits in images for h in hits)
        acc_plus = mean(all(hits) for hits in images)
        subtasks[t] = {"acc": acc, "acc_plus": acc_plus, "score": (acc + acc_plus) * 100}
    perception = sum(v["score"] for t, v in subtasks.items() if t in PERCEPTION)
    cognition = sum(v["score"] for t, v in subtasks.items() if t in COGNITION)
    return {"subtasks": subtasks, "perception": perception, "cognition": cognition,
            "total": perception + cognition, "n": len(predictions)}
