"""Several benchmarks as one split: the reported questions of a profile, evaluated in one run.

`join` makes one split (`Suite`) whose samples carry the benchmark in `family` (so records, tables and
the book's per-column code treat benchmarks as the testbed's task families) and keep each original
sample in `meta["sample"]`; images come from each benchmark's own split. `score` scores each
benchmark with its own official scorer on its original samples and adds:

- `families`: each benchmark's number as its papers report it (`paper_metric`: accuracy in [0, 1]; MME the
  perception + cognition score; POPE the F1, as the field's tables print it);
- `overall`: the mean per-question hit over all questions (`hits`), the number searches and paired
  intervals use (one scale for every benchmark).

`hits` is each benchmark's per-question rule: GQA exact match after its cleaning, POPE / MME the
parsed yes/no against the label, TextVQA / VQAv2 the VQA soft accuracy, ScienceQA / MMBench the
parsed option letter (single pass; MMBench's circular evaluation needs every rotation).
"""
from __future__ import annotations

from pathlib import Path

from .jsonl import Sample, Split
from .normalize import paired, parse_letter, vqa_accuracy

NAME = "suite"


class Suite(Split):
    """A joined split: its samples' images come from their benchmark's own split (files on disk, or
    MMBench's base64 strings), which keeps its own image cache."""

    def __init__(self, folder, samples: list[Sample], parts: dict[str, Split]):
        super().__init__(folder, samples)
        self.parts = parts

    def image(self, sample: Sample):
        return self.parts[sample.meta["benchmark"]].image(sample.meta["sample"])

    def subset(self, n: int | None) -> "Suite":
        if n is None:
            return self
        part = super().subset(n)
        out = Suite(self.folder, part.samples, self.parts)
        out.limit = part.limit
        return out


def join(splits: dict[str, Split], folder: Path | str) -> Suite:
    """One split of every sample of `splits` (benchmark name -> split), ids prefixed by the benchmark."""
    samples = [Sample(f"{bench}/{s.id}", s.image, s.question, s.answer, bench,
                      {"benchmark": bench, "sample": s})
               for bench, split in splits.items() for s in split.samples]
    out = Suite(folder, samples, dict(splits))
    limits = {getattr(split, "limit", None) for split in splits.values()}
    out.limit = limits.pop() if len(limits) == 1 else None
    return out


def _original(sample: Sample) -> Sample:
    return sample.meta["sample"]


def hit(benchmark: str, sample: Sample, prediction: str) -> float:
    """The per-question score of `prediction` for an original `sample` of `benchmark`, in [0, 1]."""
    from . import gqa, pope

    if benchmark == "gqa":
        return float(gqa.clean(prediction) == gqa.clean(sample.answer))
    if benchmark in ("pope", "mme"):
        return float(pope.parse_yes_no(prediction) == sample.answer)
    if benchmark in ("textvqa", "vqav2"):
        return vqa_accuracy(prediction, sample.answer)
    if benchmark == "scienceqa":
        return float(parse_letter(prediction, len(sample.meta["choices"])) == sample.answer)
    if benchmark == "mmbench":
        return float(parse_letter(prediction, len(sample.meta["options"])) == sample.answer)
    raise ValueError(f"no per-question rule for benchmark {benchmark!r}")


def hits(samples, predictions: list[str]) -> list[float]:
    """Per-question scores of a joined split's samples (`hit`), in order."""
    return [hit(s.meta["benchmark"], _original(s), p)
            for s, p in zip(paired(samples, predictions), predictions)]


def paper_metric(benchmark: str, metrics: dict) -> float:
    """The number the papers' tables print for `benchmark`."""
    if benchmark == "mme":
        return metrics["total"]
    if benchmark == "pope":
        return metrics["f1"]
    return metrics["accuracy"]


def score(samples, predictions: list[str]) -> dict:
    """{"overall", "families": {benchmark: paper_metric}, "benchmarks": {benchmark: official metrics},
    "n"}."""
    from . import SCORERS

    samples = paired(samples, predictions)
    groups: dict[str, tuple[list, list]] = {}
    for s, p in zip(samples, predictions):
        originals, preds = groups.setdefault(s.meta["benchmark"], ([], []))
        originals.append(_original(s))
        preds.append(p)
    metrics = {b: SCORERS[b](originals, preds) for b, (originals, preds) in groups.items()}
    per_question = hits(samples, predictions)
    return {"overall": sum(per_question) / max(1, len(per_question)),
            "families": {b: paper_metric(b, m) for b, m in metrics.items()}, "benchmarks": metrics,
            "n": len(predictions)}

