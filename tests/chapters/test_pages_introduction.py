"""The introduction's facts (`vtr.chapters.pages.introduction`) on synthetic accuracy results and
headline claims."""
import pytest

from vtr.chapters import claims
from vtr.chapters import runs as R
from vtr.chapters.pages import introduction as intro

VERDICTS = {"a": ("reproduced", "reproduced"), "b": ("partly", "not reproduced"),
            "c": ("not tested", "not tested"), "d": ("not reproduced", "reproduced")}


def table(models=("small", "big")):
    return [claims.HeadlineRow("paper", f"claim {k}", "number", "chapter",
                         {m: (f"measured {k} on {m}", v[i % 2]) for i, m in enumerate(models)})
            for k, v in VERDICTS.items()]


def accuracy(overall, blank, fams):
    """fams: family -> (accuracy, prior, blank-image accuracy); prior None for a benchmark profile."""
    prior = None if any(p is None for _, p, _ in fams.values()) else {f: p for f, (_, p, _) in fams.items()}
    return {"overall": overall, "families": {f: a for f, (a, _, _) in fams.items()}, "prior": prior,
            "blank_image": {"overall": blank, "families": {f: b for f, (_, _, b) in fams.items()}}}


def test_the_headline_table_has_a_measurement_and_a_verdict_column_per_model():
    models = ["small", "big", "third"]
    t = table(models)
    md = intro.headline_md(t, models, {m: m.upper() for m in models}).splitlines()
    header = [c.strip() for c in md[0].strip("|").split("|")]
    assert header[3:] == [f"{m.upper()}: {what}" for m in models for what in ("measurement", "verdict")]
    assert md[1].count("---") == len(header)
    for c, line in zip(t, md[2:]):
        cells = [x.strip() for x in line.strip("|").split("|")]
        assert len(cells) == len(header) and f"({{ref}}`{c.chapter}`)" in cells[1]
        assert cells[3:] == [x for m in models for x in (c.results[m][0], f"**{c.results[m][1]}**")]


def test_verdict_counts_count_each_models_verdicts():
    t = table()
    counts = intro.verdict_counts(t, ["small", "big"])
    for i, m in enumerate(["small", "big"]):
        want = [v[i] for v in VERDICTS.values()]
        assert counts[m] == {v: want.count(v) for v in intro.VERDICTS}
    text = intro.counts_md(t, ["small", "big"], {"small": "S", "big": "B"})
    small, big = text.split("; ")
    assert small.startswith("on S ") and big.startswith("on B ")
    assert f"{counts['big']['not reproduced']} did not and {counts['big']['not tested']} could not" in big


def test_on_the_testbed_the_second_model_is_compared_by_depth():
    t = table(("testbed", "testbed-deep"))
    text = intro.changed_md(t, ["testbed", "testbed-deep"], True, {"testbed": 8, "testbed-deep": 16})
    changed = [c for c in t if c.results["testbed"][1] != c.results["testbed-deep"][1]]
    assert text.startswith(f"Doubling the depth changed the verdict of {len(changed)} claims: ")
    for c in changed:
        small, big = c.results["testbed"][1], c.results["testbed-deep"][1]
        assert f"*{c.claim}* ({small} on 8 layers, {big} on 16)" in text
    assert "claim c" not in text


def test_elsewhere_every_model_is_compared_and_one_model_says_so():
    models = ["x", "y", "z"]
    t = table(models)
    text = intro.changed_md(t, models, False, {m: 8 for m in models})
    assert "`x`, `y`, `z`" in text and "claim c" not in text
    assert "claim b (partly on `x`, not reproduced on `y`, partly on `z`)" in text.replace("*", "")
    same = [claims.HeadlineRow("p", "same", "n", "ch", {m: ("m", "partly") for m in models})]
    assert intro.changed_md(same, models, False, {}).endswith("differs for 0 claims: none.")
    assert "one model (`x`)" in intro.changed_md(t, ["x"], False, {"x": 8})


def test_readout_names_the_first_models_image_families_and_the_others():
    accs = {"small": accuracy(0.8, 0.4, {"text": (1.0, 0.1, 0.1), "count": (0.45, 0.4, 0.4)}),
            "big": accuracy(0.9, 0.3, {"text": (1.0, 0.1, 0.1), "count": (0.9, 0.4, 0.2)})}
    out = intro.readout(accs, True, {"small": 8, "big": 16})
    uses, near = R.families_from_image(accs["small"])
    assert out["intro-overall"] == accs["small"]["overall"] and out["intro-blank"] == 0.4
    assert out["intro-uses"] == ", ".join(uses) and out["intro-near"] == ", ".join(near)
    assert "falls short" in out["intro-target"]  # overall below the target
    assert out["intro-others"] == (f"The 16-layer testbed answers {accs['big']['overall']:.1%} "
                                   f"({accs['big']['blank_image']['overall']:.1%} with a blank image).")


def test_readout_on_a_benchmark_profile_without_prior_or_target():
    accs = {"only": accuracy(0.5, 0.5, {"pope": (0.5, None, 0.5)})}
    out = intro.readout(accs, False, {"only": 4})
    assert out["intro-uses"] == "none" and out["intro-near"] == "pope"
    assert "no accuracy target" in out["intro-target"] and out["intro-others"] == ""


@pytest.mark.parametrize("testbed,want", [(True, "8 layers"), (False, "`m`")])
def test_models_are_named_by_depth_on_the_testbed_only(testbed, want):
    assert intro.label("m", 8, testbed) == want
    assert intro.place("m", 8, testbed) == ("the 8-layer testbed" if testbed else "`m`")


def test_facts_glue_every_key_the_page_references(monkeypatch):
    import re
    from pathlib import Path
    from types import SimpleNamespace

    from vtr.experiments import runners
    from vtr.chapters import pages

    models = ["small", "big"]
    monkeypatch.setattr(R, "models", lambda: models)
    monkeypatch.setattr(R, "is_testbed", lambda: False)
    monkeypatch.setattr(R, "n_layers", lambda m: 4)
    monkeypatch.setattr(R, "testbed_accuracy", lambda m: accuracy(0.5, 0.4, {"pope": (0.5, None, 0.3)}))
    monkeypatch.setattr(claims, "headline", lambda ms: table(ms))
    monkeypatch.setattr(pages, "profile_note", lambda: "NOTE")
    monkeypatch.setattr(runners, "get", lambda role, model=None: (SimpleNamespace(n_vision=9), [0] * 3))
    out = intro.facts()
    page = (Path(__file__).parents[2] / "notebooks" / "01-introduction.md").read_text()
    refs = (set(re.findall(r"\{glue(?::\w+)?\}`([^`:]+)", page))
            | set(re.findall(r"```\{glue:\w+\} ([\w-]+)", page)))
    assert refs == set(out) and set(intro.MARKDOWN) <= set(out)
    assert out["profile-note"] == "NOTE" and out["n-claims"] == len(VERDICTS)
    assert out["headline-table"] == intro.headline_block(table(models), models, {m: f"`{m}`" for m in models})
    block = out["headline-table"].splitlines()
    assert block[0].startswith("```{table} ") and block[1] == f":name: {intro.HEADLINE_LABEL}"
    assert block[-1] == "```" and "\n".join(block[3:-1]) == intro.headline_md(
        table(models), models, {m: f"`{m}`" for m in models})
    frame = intro.headline_frame(table(models), models, {m: m for m in models})
    header = [c.strip() for c in block[3].strip("|").split("|")]
    # the CSV's header is the page's (a model's name in backticks shows as code there)
    shown = [h.replace("`", "") for h in header[3:]]
    assert list(frame.columns) == ["paper", "claim", intro.PAPER_VALUE, *shown]
    assert len(frame) == len(VERDICTS) and f"{models[0]}: verdict" in frame.columns


def test_gpu_hours_are_shown_on_a_benchmark_profile_only(tmp_path, monkeypatch):
    """The estimate before the experiments: a row per chapter and a column per checkpoint of the
    profile, from each checkpoint's config.json; nothing on the testbed."""
    from vtr import tiny
    from vtr.experiments import profiles

    monkeypatch.delenv("VTR_PROFILE", raising=False)
    assert intro.gpu_hours_md() == ""
    for name in ("a", "b"):
        tiny.build("llava", layers=2).config.save_pretrained(tmp_path / name)
    fake = profiles.Profile("paper", {n: profiles.ModelEntry(n, tmp_path / n) for n in ("a", "b")},
                            {"pope": tmp_path, "gqa": tmp_path})
    monkeypatch.setattr(profiles, "current", lambda: fake)
    md = intro.gpu_hours_md()
    header = next(line for line in md.splitlines() if line.startswith("| chapter"))
    assert header == "| chapter | `a` | `b` |"
    assert md.splitlines()[-1].startswith("| all chapters |")
    hours, _ = intro.gpu_hours()
    assert hours.loc["all chapters"].tolist() == hours.drop("all chapters").sum().tolist()
    # on the page: a numbered table with its label and caption around the same rows
    block = intro.gpu_hours_block().splitlines()
    assert f":name: {intro.GPU_HOURS_LABEL}" in block and block[-1] == "```"
    assert any(line.startswith("```{table} ") for line in block) and header in block
