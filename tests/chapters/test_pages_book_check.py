"""The book-check page's FLOPs curves, table and quoted numbers (`vtr.chapters.pages.book_check`),
on a small decoder, against `vtr.flops` called directly."""
import pytest

from vtr.chapters.pages import book_check
from vtr.flops import DecoderShape, flops_ratio
from vtr.plan import Plan

SHAPE = DecoderShape(hidden=16, intermediate=40, n_layers=20)
N_VISION, N_TEXT = 12, 3


def frame(step: int = 1):
    return book_check.flops_frame(range(0, SHAPE.n_layers + 1, step), shape=SHAPE, n_vision=N_VISION,
                                  n_text=N_TEXT)


def test_every_point_is_the_flops_ratio_of_its_drop_plan():
    df = frame()
    assert len(df) == len(book_check.RATES) * (SHAPE.n_layers + 1)
    for row in df.itertuples(index=False):
        k, r, ratio = row
        plan = Plan.drop_at(SHAPE.n_layers, N_VISION, k, round(float(r) * N_VISION))
        assert ratio == pytest.approx(flops_ratio(plan, N_TEXT, SHAPE))


def test_keeping_tokens_longer_costs_more_and_dropping_after_the_last_layer_costs_nothing():
    df = frame()
    for _, curve in df.groupby("kept fraction r"):
        ratios = curve.sort_values("drop layer K")[book_check.COLUMN].tolist()
        assert ratios == sorted(ratios) and ratios[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("smoke,step", [(False, 1), (True, 8)])
def test_the_drop_layers_of_a_build(smoke, step):
    layers = book_check.drop_layers(book_check.LLAVA_7B, smoke=smoke)
    assert layers.step == step and layers[0] == 0 and layers[-1] == book_check.LLAVA_7B.n_layers


@pytest.mark.parametrize("step,every", [(1, 4), (2, 3)])
def test_the_table_shows_every_nth_computed_layer_and_the_facts_read_the_curves(step, every):
    df = frame(step)
    table = book_check.flops_table(df, every)
    assert list(table.index) == list(range(0, SHAPE.n_layers + 1, step))[::every]
    assert list(table.columns) == [f"r = {r:.2f}" for r in book_check.RATES]
    at = {(k, r): v for k, r, v in df.itertuples(index=False)}
    assert table.loc[table.index[1], "r = 0.25"] == at[(table.index[1], "0.25")]
    facts = book_check.facts(df, range(0, SHAPE.n_layers + 1, step), every)
    assert facts == {"book-check-table-step": step * every, "book-check-k0-r25": at[(0, "0.25")],
                     "book-check-k16-r0": at[(16, "0.00")]}
