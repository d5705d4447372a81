"""The testbed's recipe variants (`data/testbed/ablations/variants.json`, one folder per variant
beside it, named by what it changed) with the last held-out accuracy of each one's training log."""
from __future__ import annotations

import json

from .. import journal
from ..paths import data_dir


def variants() -> list[dict]:
    return json.loads((data_dir() / "testbed" / "ablations" / "variants.json").read_text())


def table() -> list[dict]:
    """One row per variant: what it changed, its outcome, and (when its log has held-out
    evaluations) the step and overall accuracy of the last one, on the training monitor's 300
    held-out questions."""
    rows = []
    for v in variants():
        row = {"variant": v["variant"], "changed": v["changed"], "outcome": v["outcome"],
               "log": v["log"], "held-out step": None, "held-out accuracy": None}
        if v["log"]:
            held = [r for r in journal.read(data_dir() / "testbed" / v["log"]) if "heldout" in r]
            if held:
                row["held-out step"] = held[-1]["step"]
                row["held-out accuracy"] = held[-1]["heldout"]["overall"]
        rows.append(row)
    return rows
