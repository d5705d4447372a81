"""One evaluation of a method at a budget on a split: resumable from its run file (checked by a
fingerprint of what made it), summarised as one record appended to the results store."""
from __future__ import annotations

from .. import fingerprint as fp
from ..engine import Policy
from ..evaluation import evaluate, run_path, run_tag
from ..paths import results_dir
from ..timing import prefill_speedup
from . import store
from .metrics import primary
from .policies import policy_for
from .sizes import size


def answer_key(name: str, budget, kind: str, seed: int, hp: dict, policy: Policy) -> dict:
    """What decides an evaluation's answers besides the model and the split: the policy's identity
    (`Policy.identity`: its plan and selection rule) when it declares one, else the method with its
    budget, budget kind, seed and hyper-parameters. Not the experiment or table that asks."""
    selection = policy.identity()
    if selection is not None:
        return {"selection": selection}
    return {"method": name, "budget": budget, "kind": kind, "seed": seed, "hyperparameters": hp}


def run_fingerprint(runner, split, key: dict) -> dict:
    """What an evaluation's run file must have been made by to be resumed or shared (`vtr.fingerprint`)."""
    return {**fp.model_fingerprint(runner), **fp.split_fingerprint(split), "benchmark": runner.benchmark,
            **key, "code": fp.code_version()}


def eval_method(runner, split, name: str, budget: float | None, kind: str = "keep", seed: int = 0,
                experiment: str = "methods", split_name: str = "test", measure_speed: bool = True,
                progress: bool = True, speed_batch: int | None = None, speed_repeats: int | None = None,
                **hp) -> dict:
    """Evaluate one method at one budget and append its summary record (under `experiment`) to the
    store. The per-sample run file is keyed by `answer_key`, so a request whose answers another
    request already decided (the same plan asked by two tables, or two methods with one plan)
    reads that run instead of repeating it; an interrupted run resumes."""
    from ..evaluation import distributed

    policy = policy_for(runner, split, name, budget, kind, seed, **hp)
    key = answer_key(name, budget, kind, seed, hp, policy)
    label = key["selection"]["select"] if "selection" in key else name
    stamp = run_fingerprint(runner, split, key)
    out = run_path(run_tag(runner.name, runner.benchmark, label, split_name, len(split), stamp))
    if distributed.active():  # torchrun: sharded over ranks
        summary = distributed.evaluate(runner, split, policy, out=out, progress=progress,
                                       batch_size=runner.batch_size, fingerprint=stamp)
    else:
        summary = evaluate(runner, split, policy, out=out, progress=progress, fingerprint=stamp,
                           batch_size=runner.batch_size,
                           features=runner.feature_cache() if runner.shares_images else None)
    m = summary["metrics"]
    rec = {"experiment": experiment, "method": name, "budget": budget, "kind": kind, "model": runner.name,
           "split": split_name, "seed": seed, "hyperparameters": hp, "overall": primary(m),
           "families": m.get("families"), "exist_f1": m.get("exist_f1"), "n": summary["n"],
           "flops_ratio": summary["flops_ratio"], "keep_rate": summary["keep_rate"],
           "mean_tokens": summary["mean_tokens"], "vision_per_layer": summary["vision_per_layer"],
           "run_file": str(out.relative_to(results_dir()))}
    if "overall" not in m:  # a real benchmark: keep its official metrics whole
        rec.update(benchmark=runner.benchmark, metrics=m)
    if not distributed.is_main():
        return rec  # rank 0 measures the speed and writes the store
    if measure_speed:
        # the book's sizes unless the caller (`vtr eval`) gives its own
        batch, repeats = speed_batch or size("speed_batch"), speed_repeats or size("speed_repeats")

        def measure():
            inputs = runner.inputs(split.samples[:batch], split)
            return prefill_speedup(runner.model, inputs, policy, repeats=repeats)
        # one timing per run file and batch: tables that share an evaluation show the same speedup
        rec["speedup"] = store.measured_once("timings", {"run": out.stem, "batch": batch, "repeats": repeats},
                                             measure)
    return store.append(rec)
