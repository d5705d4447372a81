"""The book's results about the unpruned model (part of `vtr.chapters.runs`, which re-exports them):
chapter 2's accuracy, training log and attention probe, chapter 3's rank consistency, and chapter
7's sweep and attention stages. The shared helpers and every result are reached through `runs`
(`R.first_model()`, `R.gsearch()`), so that one replaced there is the one every caller sees.
"""
from __future__ import annotations

import json

import numpy as np

from ... import analysis
from ...experiments import evaluations, runners, searches
from ...experiments.sizes import size
from ...paths import data_dir
from ...plan import Plan
from .. import runs as R


# ------------------------------------------------------------------ chapter 2: the model unpruned
def testbed_accuracy(model: str | None = None) -> dict:
    """The unpruned model on the reported questions, overall and per family (per benchmark on a
    benchmark profile), with the image and with a blank image of the same size; on the testbed also
    the answer prior (always the family's most frequent test answer)."""
    model = model or R.first_model()

    def compute():
        from ...evaluation import evaluate
        from ...testbed.score import with_blank

        # the unpruned run is the run file every experiment shares, and the test images' features
        # stay in its runner's cache
        runner, split = runners.get("test", model)
        real = evaluations.eval_method(runner, split, "full", None, experiment="testbed", progress=False,
                                       measure_speed=False)
        if not R.is_testbed():
            blank = evaluate(runner, split, batch_size=runner.batch_size, progress=False,
                             blank=True)["metrics"]
            return {**with_blank(real, blank), "prior": None}
        from ...testbed.score import accuracy
        from ...testbed.tasks import answer_space

        # what `vtr testbed eval --split test` prints
        res = accuracy(runner, split, progress=False, real=real)
        majority = {}
        for fam in answer_space():
            answers = [s.answer for s in split.samples if s.family == fam]
            if answers:
                majority[fam] = max(set(answers), key=answers.count)
        hits = {fam: [s.answer == majority[fam] for s in split.samples if s.family == fam]
                for fam in majority}
        res["prior"] = {fam: float(np.mean(h)) for fam, h in hits.items()}
        res["prior_overall"] = float(np.mean([s.answer == majority[s.family] for s in split.samples]))
        return res
    return R.cached(R.named("testbed_accuracy", model), compute)


# The testbed's accuracy target, in the trigger format.
TARGET_OVERALL, TARGET_FAMILY = 0.90, 0.80


def families_from_image(acc: dict, margin: float = 0.10) -> tuple[list[str], list[str]]:
    """(families answered from the image, the others) for a `testbed_accuracy()` result: from the
    image = more than `margin` above the family's answer prior and more than `margin` lost when the
    image is blanked. A benchmark profile has no answer prior (`prior` is None): the blank-image
    test alone decides there."""
    fams = list(acc["families"])
    prior = acc.get("prior")
    uses = [f for f in fams if (prior is None or acc["families"][f] - prior[f] > margin)
            and acc["families"][f] - acc["blank_image"]["families"][f] > margin]
    return uses, [f for f in fams if f not in uses]


def meets_target(acc: dict) -> bool:
    return acc["overall"] >= TARGET_OVERALL and min(acc["families"].values()) >= TARGET_FAMILY


def training_log(relative: str = "testbed/model/training_log.jsonl") -> list[dict]:
    """Records of a training log under the data folder (default: the shipped checkpoint's)."""
    path = data_dir() / relative
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def heldout_rows(records: list[dict]) -> list[dict]:
    """One row per held-out evaluation of a training log: step, accuracy per family, overall."""
    return [{"step": r["step"], **r["heldout"]["families"], "overall": r["heldout"]["overall"]}
            for r in records if "heldout" in r]


def target_attention() -> dict:
    """Where the trigger (and the text tokens) look, per layer, when asked about one named object
    (testbed profile only: its generator draws the object regions the probe needs)."""
    def compute():
        from ...models import load
        from ...testbed.probes import attribute_regions

        runner = load("testbed")
        split, masks = attribute_regions(size("probe_questions"))
        out = {"n": len(split)}
        for query in ("last", "text_mean"):
            out[query] = analysis.region_lift(analysis.layer_scores(runner, split, query, progress=False),
                                              masks)
        return out
    return R.cached("target_attention", compute)


# ------------------------------------------------------------------ chapter 3: rank consistency
def rank_consistency(model: str | None = None) -> dict:
    model = model or R.first_model()

    def compute():
        runner, split = runners.get("val", model)
        split = split.subset(size("rank_questions"))
        out = {"n": len(split)}
        for query in ("last", "text_mean"):
            s = analysis.layer_scores(runner, split, query, progress=False)
            taus = analysis.kendall_per_sample(s)
            n_vision = s.shape[2]
            k = n_vision // 4
            top = np.argsort(-s, axis=2, kind="stable")[:, :, :k]
            # nestedness: share of layer l+1's top-k that is also in layer l's top-k
            nested = [float(np.mean([len(set(top[i, layer + 1]) & set(top[i, layer])) / k
                                     for i in range(len(s))]))
                      for layer in range(s.shape[1] - 1)]
            out[query] = {"tau_mean": taus.mean(0).tolist(), "tau_std": taus.std(0).tolist(),
                          "per_sample_adjacent": [taus[:, layer, layer + 1].tolist()
                                                  for layer in range(s.shape[1] - 1)],
                          "overlap_k": k, "overlap": analysis.topk_overlap(s, k).tolist(), "nested": nested}
        return out
    return R.cached(R.named("rank_consistency", model), compute)


def tau_excluding_first(rc: dict, query: str = "last") -> float:
    """Mean Kendall tau over pairs of distinct layers, both >= 1 (the paper excludes layer 1), of a
    `rank_consistency` result: `vtr.testbed.history.mean_tau_without_first`, which the shipped
    checkpoints' saved taus use too."""
    from ...testbed.history import mean_tau_without_first

    return mean_tau_without_first(np.array(rc[query]["tau_mean"]))


# ------------------------------------------------------------------ chapter 7: DyVTE stages
def vtw_sweep(model: str | None = None) -> dict:
    """Accuracy on val when every vision token is removed before layer l, for each l (+ full)."""
    model = model or R.first_model()

    def compute():
        runner, val = runners.get("val", model)
        L = runner.model.config.get_text_config().num_hidden_layers
        score = searches.val_scorer(runner, val)
        acc = {layer: score(Plan.drop_at(L, runner.n_vision, layer, 0)) for layer in range(0, L + 1)}
        return {"accuracy": acc}
    return R.cached(R.named("vtw_sweep", model), compute)


def three_stages(model: str | None = None) -> list[dict]:
    model = model or R.first_model()

    def compute():
        runner, val = runners.get("val", model)
        return {"rows": analysis.attention_mass(runner, val.subset(size("stage_questions")), progress=False)}
    return R.cached(R.named("three_stages", model), compute)["rows"]
