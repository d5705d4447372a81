"""The book's experiments on the active profile's models, each computed once and saved
(load-or-compute).

Every chapter and the introduction's headline table call these; whichever page executes first
computes a result, the others read the saved JSON. Results live in `vtr.paths.results_dir()`, one
folder per profile, whose name carries a hash of the code and weights, so nothing computed by other
code is reused. The profile (`vtr.experiments.profiles`) decides the models (`models()`), the
reported questions (one split; on a benchmark profile its families are the benchmarks) and the
questions the searches decide on; functions that only make sense on the testbed say so.

This package's top level holds what every result shares (the budgets, the profile's models, the
cache) and re-exports the results, computed in `runs.model` (the unpruned model: chapters 2, 3
and 7's stages), `runs.methods` (the methods compared: chapters 4 to 7), `runs.speed` (timings:
chapter 8 and generation) and `runs.later` (what later benchmark studies found). Those reach the
helpers and each other through `runs`, so a helper or result replaced here is the one every caller
sees.
"""
from __future__ import annotations

import time

from ...experiments import runners, store
from ..definitions import sparsevlm_budgets
from .methods import (CLS_SHARE, correct, cls_knee, dyvte, dyvte_routers, field_group, field_speed,
                           field_table, gsearch, gsearch_queries, methods_speed, methods_table,
                           paired_difference, per_sample_correct, psigmoid, record_difference, routers_path,
                           score_sources, stored_record)
from .model import (TARGET_FAMILY, TARGET_OVERALL, families_from_image, heldout_rows, meets_target,
                         rank_consistency, target_attention, tau_excluding_first, testbed_accuracy,
                         three_stages, training_log, vtw_sweep)
from .later import BATCH_BUDGET, BATCH_SIZES, LATER_METHODS, attention_profile, batch_invariance
from .speed import GENERATION_METHODS, efficiency, generation, timed_rows

BUDGETS = (0.5, 0.25, 0.125)
# the methods tables' rows: the papers' baselines, then the methods later benchmark studies compare
# (`runs.later`: downsampling, pooling, DART, DivPrune), P-Sigmoid last
TABLE_METHODS = ("fastv", "pdrop", "sparsevlm", "random", "uniform", "vtw", "visionzip", "prumerge",
                 "prumerge_plus", "tome", "downsample", "pool", "dart", "divprune", "psigmoid")
TOLERANCE = 0.005
# the field's budgets (SparseVLM's 192 / 128 / 64 of 576 tokens per layer) as mean keep rates
FIELD_BUDGETS = sparsevlm_budgets()


def models() -> list[str]:
    """The active profile's models: on the testbed profile the two shipped testbeds (the 8-layer
    model every chapter starts from, and the 16-layer one the depth-sensitive findings are measured
    on as well); on a benchmark profile its checkpoints, in the profile file's order."""
    return runners.models()


def first_model() -> str:
    """The model the single-model analyses use (the 8-layer testbed on the testbed profile)."""
    return models()[0]


def is_testbed() -> bool:
    """True on the testbed profile: its procedural benchmark, training logs and probes exist."""
    from ...experiments import profiles

    return profiles.current().is_testbed


def named(base: str, model: str) -> str:
    """Results-folder name of a book result for `model` (the first model's names carry no suffix)."""
    model = model or first_model()
    return base if model == first_model() else f"{base}_{model}"


def n_layers(model: str | None = None) -> int:
    model = model or first_model()
    runner, _ = runners.get("val", model)
    return runner.model.config.get_text_config().num_hidden_layers


def cached(name: str, compute):
    saved = store.load_json(name)
    if saved is not None:
        return saved
    t0 = time.time()
    value = compute()
    value["_seconds"] = round(time.time() - t0, 1)
    store.save_json(name, value)
    return value


__all__ = [
    # shared by every result
    "BUDGETS", "TABLE_METHODS", "TOLERANCE", "FIELD_BUDGETS", "models", "first_model", "is_testbed",
    "named", "n_layers", "cached",
    # runs.model
    "TARGET_OVERALL", "TARGET_FAMILY", "testbed_accuracy", "families_from_image", "meets_target",
    "training_log", "heldout_rows", "target_attention", "rank_consistency", "tau_excluding_first",
    "vtw_sweep", "three_stages",
    # runs.methods
    "gsearch_queries", "gsearch", "psigmoid", "methods_table", "methods_speed", "field_table",
    "field_speed", "field_group", "stored_record", "correct", "per_sample_correct", "score_sources",
    "CLS_SHARE", "cls_knee", "routers_path", "dyvte_routers", "dyvte", "paired_difference",
    "record_difference",
    # runs.speed
    "timed_rows", "efficiency", "GENERATION_METHODS", "generation",
    # runs.later
    "LATER_METHODS", "BATCH_BUDGET", "BATCH_SIZES", "batch_invariance", "attention_profile",
]
