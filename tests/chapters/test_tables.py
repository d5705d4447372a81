"""The papers' table layout (`vtr.chapters.tables`) on synthetic records."""
import pandas as pd
import pytest

from vtr.chapters import tables


def rec(method, budget, fams, f1=None, flops=1.0):
    return {"method": method, "budget": budget, "families": fams, "exist_f1": f1, "flops_ratio": flops,
            "overall": sum(fams.values()) / len(fams)}


def test_columns_rows_average_and_share_of_unpruned():
    full = rec("full", None, {"attribute": 1.0, "exist": 0.9}, f1=0.8)
    fastv = rec("fastv", 0.25, {"attribute": 0.5, "exist": 0.9}, f1=0.4, flops=0.3)
    speed = {"0.25": [{"name": "fastv", "speedup": 2.0, "speedup_range": [1.5, 2.5]}]}
    df = tables.paper_layout([full, fastv, {"method": "pdrop", "budget": 0.25, "error": "infeasible"}], speed)
    assert list(df.index) == [("1", "unpruned"), ("0.25", "fastv")]  # the infeasible record is left out
    assert df.loc[("1", "unpruned"), "exist ~ POPE (F1)"] == pytest.approx(80)  # F1, not accuracy
    assert df.loc[("0.25", "fastv"), "average"] == pytest.approx(45)
    assert df.loc[("0.25", "fastv"), "% of unpruned"] == pytest.approx(100 * 45 / 90)
    assert df.loc[("0.25", "fastv"), "speedup"] == 2.0 and pd.isna(df.loc[("1", "unpruned"), "speedup"])
    assert df.loc[("0.25", "fastv"), "speedup range"] == "1.50-2.50"
    assert df.loc[("0.25", "fastv"), "decoder FLOPs %"] == pytest.approx(30)


def test_row_groups_name_rows_and_their_timings():
    """The field tables group rows by the keep rate they match (`group`), and read each row's
    timing from its group's run, not from another group timed at the same budget value."""
    full = rec("full", None, {"attribute": 1.0})
    a = {**rec("fastv", 0.2, {"attribute": 0.5}, flops=0.2), "field": 1 / 3, "kind": "flops"}
    b = {**rec("fastv", 0.2, {"attribute": 0.6}, flops=0.2), "field": 2 / 9, "kind": "flops"}
    speed = {"matched 0.333333": [{"name": "fastv", "speedup": 1.5, "speedup_range": [1.4, 1.6]}],
             "0.2": [{"name": "fastv", "speedup": 9.0, "speedup_range": [9.0, 9.0]}]}
    df = tables.paper_layout([full, a, b], speed,
                             lambda r: (f"{round(576 * r['field'])}", f"matched {r['field']:g}"))
    assert list(df.index) == [("1", "unpruned"), ("192", "fastv"), ("128", "fastv")]
    assert df.loc[("192", "fastv"), "speedup"] == 1.5
    assert pd.isna(df.loc[("128", "fastv"), "speedup"])  # its group was not timed


def test_family_columns_keep_testbed_names_and_name_benchmarks_as_the_papers():
    testbed = rec("full", None, {"attribute": 0.5, "exist": 0.25}, f1=0.9)
    assert tables.family_columns(testbed) == {"attribute": 50.0, "exist": 25.0}  # accuracy, not F1
    bench = rec("full", None, {"pope": 0.5, "mme": 1400.0})
    assert tables.family_columns(bench) == tables.family_scores(bench)
    assert set(tables.family_columns(bench)) == {tables.BENCHMARK_COLUMNS["pope"],
                                                 tables.BENCHMARK_COLUMNS["mme"]}


def test_a_range_of_one_round_prints_one_value():
    from vtr.chapters.tables import span

    assert span(1.1, 1.16) == "1.10-1.16"
    assert span(1.13, 1.13) == "1.13" and span(1.1301, 1.1299) == "1.13"
