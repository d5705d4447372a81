"""vtr as an lmms-eval model: `python -m lmms_eval --model vtr --model_args pretrained=...,method=...`.

Install with `pip install -e .[lmms]` (pinned versions: `requirements-lmms.lock`). The model is
registered through the `lmms_eval.models` entry point (pyproject.toml), which lmms-eval reads at
start-up; `manifest()` is what it calls. The class is `vtr.integrations.lmms.model.VTR`.

`TASKS` is the folder of the tasks shipped here (pass it to `--include_path`): `vtr_testbed_val`
and `vtr_testbed_test` read the testbed's JSONL splits from `data/benchmarks/testbed/` of this
repository (nothing is downloaded) and score exact-match accuracy as `vtr eval` does.
"""
from __future__ import annotations

from pathlib import Path

TASKS = Path(__file__).resolve().parent / "tasks"
MODEL_CLASS = "vtr.integrations.lmms.model.VTR"


def manifest():
    """The lmms-eval model manifest of `--model vtr` (called by lmms-eval's entry-point loader)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="vtr", simple_class_path=MODEL_CLASS)
