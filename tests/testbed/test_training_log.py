"""The shipped checkpoint's training log, as the testbed chapter reads it."""
import json

from vtr import paths
from vtr.chapters import runs as book_runs


def test_heldout_rows_follow_the_shipped_log_and_recipe():
    log = book_runs.training_log()
    rows = book_runs.heldout_rows(log)
    recipe = json.loads((paths.testbed_model_dir() / "training.json").read_text())["recipe"]
    assert rows and [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    total = recipe.get("caption_steps", 0) + recipe["lm_steps"] + recipe["tune_steps"]
    assert rows[-1]["step"] == total - 1  # evaluated at the very end
    assert all(0.0 <= v <= 1.0 for r in rows for k, v in r.items() if k != "step")
    assert set(rows[0]) == {"step", "overall",
                            *log[[("heldout" in r) for r in log].index(True)]["heldout"]["families"]}
