"""What every chapter page says about the build it comes from.

One module per chapter here computes the facts its page glues (`facts(...) -> dict`);
`profile_note()` is glued at the top of each chapter (`{glue:md} profile-note`). On the testbed
profile (the published book) it is empty. On another profile it names the profile, its models and
benchmarks, and says how to read the page: the prose describes the testbed build, the numbers,
tables, figures and verdicts are this profile's; a section that applies to the testbed only says so.
"""
from __future__ import annotations

from ...experiments import profiles
from ...experiments.profiles import BENCHMARK_NAMES


def profile_note() -> str:
    """Markdown for the top of a chapter ("" on the testbed profile)."""
    prof = profiles.current()
    if prof.is_testbed:
        return ""
    models = ", ".join(f"`{m}`" for m in prof.models)
    benchmarks = ", ".join(BENCHMARK_NAMES.get(b, b) for b in prof.benchmarks)
    warning = (" Its checkpoints have random weights: the numbers exercise every code path and mean "
               "nothing." if prof.name == "tiny" else "")
    return (f"```{{note}}\nThis page was built on the **{prof.name}** profile: models {models}; "
            f"benchmarks {benchmarks}.{warning} The prose describes the book's testbed build; the "
            f"numbers, tables, figures and verdicts are this profile's.\n```")


def testbed_only(what: str) -> str:
    """The sentence a section shows on a profile it does not apply to."""
    return f"*{what} applies to the testbed profile only (its generator and training logs); not shown here.*"


def notice_table(what: str):
    """The one-cell table a testbed-only table shows on another profile: `testbed_only(what)` (the
    book's `glue:table` needs a table there, and its listing of tables a CSV)."""
    import pandas as pd

    return pd.DataFrame({"note": [testbed_only(what).strip("*")]})


def notice_figure(what: str):
    """The figure a testbed-only figure shows on another profile: the sentence `testbed_only(what)`
    (`glue:figure` and the book's listing of figures need a PNG and an SVG there)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(7, 0.8))
    fig.text(0.5, 0.5, testbed_only(what).strip("*"), ha="center", va="center", style="italic", wrap=True)
    return fig


REASON = "why it could not run"


def not_run_table(rows: list[dict]):
    """The rows a chapter's tables leave empty, one per entry of `rows` (dicts: testbed, method,
    budget, any other column, and REASON, the message of the method's PlanError), as a table for
    `save_table` (method names are shown by their display names there)."""
    import pandas as pd

    columns = list(dict.fromkeys(k for r in rows for k in r)) or ["testbed", "method", "budget", REASON]
    if not rows:  # a table still shows, saying so
        rows = [{"testbed": "every testbed", "method": "", "budget": None,
                 REASON: "every plan could be made"}]
    return pd.DataFrame(rows, columns=columns).drop_duplicates().reset_index(drop=True)


def split_not_run(line: str) -> dict:
    """A plan that could not be made, as the runs record it ("<method> at <budget>: <reason>"), as
    a row of `not_run_table`."""
    head, _, reason = line.partition(": ")
    method, _, budget = head.rpartition(" at ")
    return {"method": method, "budget": float(budget), REASON: reason}
