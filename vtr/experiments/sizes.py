"""Every size the book's runs use, full and smoke, in one table.

The full build (`make book`) uses the first column; the smoke build (`VTR_SMOKE=1`, what `make
test` builds in CI within minutes) the second. Smoke numbers only check that every chapter runs:
they are never quoted as results. A profile's `sizes` entry (`vtr.experiments.profiles`) replaces
an entry in both builds.
"""
from __future__ import annotations

import os
from functools import lru_cache

from ..paths import smoke

# name: (full, smoke)
SIZES: dict[str, tuple] = {
    "val": (None, 32),                 # validation questions the searches score on (None: the whole split)
    "val_extra": (None, 32),           # more val questions G-Search's sequential test may add
    "test": (None, 72),                # test questions every method is evaluated on (smoke: a batch of
                                       # 64 and a short one)
    "bo_iterations": (40, 6),          # P-Sigmoid's Bayesian-optimisation evaluations
    "speed_batch": (32, 8),            # batch of the speedup column of a method's record
    "speed_repeats": (3, 1),           # interleaved rounds of that speedup
    "table_speed_repeats": (5, 1),     # interleaved rounds timing every method of a budget together
    "table_speed_warmup": (2, 0),      # their untimed warm-up rounds (smoke: none, the timed round runs
                                       # the same code; the tiny profile runs one)
    "probe_questions": (300, 32),      # attribute probes of the testbed chapter
    "rank_questions": (300, 32),       # val questions of the rank-consistency scores
    "cls_questions": (300, 32),        # val questions of the CLS-similarity curves
    "stage_questions": (200, 32),      # val questions of DyVTE's attention-mass stages
    "router_questions": (1200, 96),    # DyVTE's router training questions
    "router_seeds": ((0, 1, 2), (0,)),  # DyVTE's router seeds
    "efficiency_batch": (32, 8),       # batch of the efficiency chapter's timings
    "prefill_repeats": (7, 2),         # its prefill rounds
    "decode_new_tokens": (16, 4),      # its decode length
    "decode_repeats": (3, 1),          # its decode rounds
    "growth_sizes": ((32, 64, 96, 128), (32, 64)),  # image sizes of the cost-growth model
    "growth_repeats": (5, 2),          # its prefill rounds
    "generate_batch": (8, 4),          # batch of the end-to-end generation timings
    "generate_new_tokens": ((16, 128, 512), (4, 16)),  # output lengths timed
    "generate_repeats": (3, 1),        # interleaved rounds per output length
    "published_batch": (8, 2),         # batch of the published FastV strategies' timings
    "published_repeats": (5, 1),       # their interleaved rounds
    "published_warmup": (2, 0),        # their untimed warm-up rounds
    "published_hidden": (512, 64),     # width of the random-init LLaVA they are also timed on
    "batch_questions": (256, 8),       # test questions of the batch-invariance comparison
    "profile_questions": (200, 16),    # val questions of the attention profile
}


def size(name: str):
    """The size `name` of this build (full or smoke), or the active profile's override of it."""
    overrides = _overrides(os.environ.get("VTR_PROFILE", ""), os.environ.get("VTR_PROFILE_FILE", ""))
    if name in overrides:
        value = overrides[name]
        return tuple(value) if isinstance(value, list) else value
    full, quick = SIZES[name]
    return quick if smoke() else full


@lru_cache(maxsize=4)
def _overrides(profile: str, file: str) -> dict:
    """The `sizes` entry of the active profile (keyed by the variables that choose it)."""
    from .profiles import current

    return current(check=False).sizes
