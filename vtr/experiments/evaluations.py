"""One evaluation of a method at a budget on a split: resumable from its run file (checked by a
fingerprint of what made it), summarised as one record appended to the results store."""
from __future__ import annotations

from .. import fingerprint as fp
from ..engine import Policy
from ..evaluation import evaluate, run_path, run_tag
from ..paths import results_dir
from ..timing import prefill_speedup
from . import store
from .metrics import headline
from .policies import policy_for
from .sizes import size


def run_fingerprint(runner, split, name: str, budget, kind: str, seed: int, hp: dict, policy: Policy) -> dict:
    """What an evaluation's run file must have been made by to be resumed (`vtr.fingerprint`)."""
    plan = getattr(policy, "plan", None)
    return {**fp.model_fingerprint(runner), **fp.split_fingerprint(split), "benchmark": runner.benchmark,
            "method": name, "budget": budget, "kind": kind, "seed": seed, "hyperparameters": hp,
            "plan": None if plan is None else list(plan.keep), "code": fp.code_version()}

def eval_method(runner, split, name: str, budget: float | None, kind: str = "keep", seed: int = 0,
                experiment: str = "methods", split_name: str = "test", measure_speed: bool = True,
                progress: bool = True, speed_batch: int | None = None, speed_repeats: int | None = None,
                **hp) -> dict:
    """Evaluate one method at one budget; resumable; appends the summary record to the store."""
    from ..evaluation import distributed

    policy = policy_for(runner, split, name, budget, kind, seed, **hp)
    out = run_path(run_tag(runner.name, runner.benchmark, experiment, name, budget, kind, split_name, len(split),
                           seed, hp))
    stamp = run_fingerprint(runner, split, name, budget, kind, seed, hp, policy)
    if distributed.active():  # torchrun: sharded over ranks
        summary = distributed.evaluate(runner, split, policy, out=out, progress=progress,
                                       batch_size=runner.batch_size, fingerprint=stamp)
    else:
        summary = evaluate(runner, split, policy, out=out, progress=progress, fingerprint=stamp,
                           batch_size=runner.batch_size,
                           features=runner.feature_cache() if runner.shares_images else None)
    m = summary["metrics"]
    rec = {"experiment": experiment, "method": name, "budget": budget, "kind": kind, "model": runner.name,
           "split": split_name, "seed": seed, "hyperparameters": hp, "overall": headline(m),
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
        inputs = runner.inputs(split.samples[:speed_batch or size("speed_batch")], split)
        rec["speedup"] = prefill_speedup(runner.model, inputs, policy, repeats=speed_repeats or size("speed_repeats"))
    return store.append(rec)
