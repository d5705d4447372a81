"""`vtr.chapters.pages.paper_scale`: which models are estimated, and the page's tables and facts."""
from pathlib import Path

import pandas as pd
import pytest

from vtr.chapters import paper_scale as P
from vtr.chapters.pages import paper_scale as page
from vtr.experiments.profiles import ModelEntry, Profile
from vtr.plan import Plan

GPU = P.GPU()


def small_model(layers=4, n_vision=16):
    from vtr.flops import DecoderShape

    return P.Model(shape=DecoderShape(hidden=64, intermediate=128, n_layers=layers), vocab=100,
                   n_vision=n_vision)


def data(models, testbed=False, smoke=True, work=None):
    work = work or P.Workload()
    first = next(iter(models))
    example = Profile("paper", {"a": ModelEntry("a", Path("/x"))}, {"pope": Path("/y"), "gqa": Path("/z")})
    return {"testbed": testbed, "models": models, "skipped": {}, "first": first, "gpu": GPU, "work": work,
            "profile_note": "", "example": example, "n_families": 3,
            "per": {n: page.chapter_table(m, GPU, work) for n, m in models.items()},
            "curve": page.keep_curve(models[first], GPU, work, page.keeps(smoke))}


def test_the_testbed_estimates_llava_1_5_7b_and_a_profile_its_checkpoints(tmp_path):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, Qwen2VLConfig

    assert page.estimated_models(Profile("testbed")) == ({page.PAPER_MODEL: P.Model()}, {})
    llava = LlavaConfig(text_config=LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                                num_attention_heads=4, vocab_size=100),
                        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64,
                                                       num_hidden_layers=2, num_attention_heads=2,
                                                       patch_size=8, image_size=32))
    llava.save_pretrained(tmp_path / "llava")
    Qwen2VLConfig().save_pretrained(tmp_path / "qwen")
    prof = Profile("paper", {n: ModelEntry(n, tmp_path / n) for n in ("llava", "qwen")})
    models, skipped = page.estimated_models(prof)
    assert list(models) == ["llava"]
    assert models["llava"].shape.n_layers == 3 and models["llava"].n_vision == 16
    assert list(skipped) == ["qwen"]
    note = page.models_note(models, skipped, testbed=False)
    assert "`llava` (3 x 64 decoder, 16 vision tokens)" in note and "`qwen` is not estimated" in note
    assert page.models_note(models, skipped, testbed=True) == ""


def test_workload_keeps_the_profile_benchmarks():
    assert page.workload(None).suite == P.SUITE
    work = page.workload(["pope", "gqa", "testbed"])
    assert work.suite == {page.SUITE_SPLITS[b]: P.SUITE[page.SUITE_SPLITS[b]] for b in ("pope", "gqa")}
    assert page.workload(["testbed"]).suite == P.SUITE  # no known benchmark: the papers' seven
    assert set(page.SUITE_SPLITS.values()) == set(P.SUITE)


def test_chapter_table_adds_up_the_chapter_hours():
    model, work = small_model(), P.Workload()
    per = page.chapter_table(model, GPU, work)
    hours = pd.DataFrame(P.chapter_hours(model, GPU, work))
    assert per["total hours, 1 GPU"].sum() == pytest.approx(hours["hours"].sum())
    assert per[f"hours, {GPU.n_gpus} GPUs"].sum() == pytest.approx(hours["hours"].sum() / GPU.n_gpus)
    bench = hours[hours.part == "benchmarks"]
    assert per["benchmark-suite passes"].sum() == pytest.approx(bench["samples"].sum() / work.suite_questions)


def test_facts_follow_the_time_model():
    model = small_model()
    d = data({"m": model})
    facts = page.facts(d)
    hours = sum(r["hours"] for r in P.chapter_hours(model, GPU, d["work"]))
    assert facts["ps-total-hours"] == pytest.approx(hours)
    full = P.seconds_per_sample(Plan.full(4, 16), model, GPU, 3)
    none = P.seconds_per_sample(Plan.drop_at(4, 16, 2, 0), model, GPU, 3)
    assert facts["ps-k0-ratio"] == pytest.approx(sum(none.values()) / sum(full.values()))
    assert facts["ps-ms-prefill"] == pytest.approx(1e3 * full["prefill"])
    assert facts["ps-n-models"] == 1 and facts["ps-n-benches"] == 2 and facts["ps-n-families"] == 3
    assert set(page.MARKDOWN) <= set(facts)
    no_vqa = page.facts(data({"m": model}, work=page.workload(["pope"])))
    assert no_vqa["ps-vqav2-share"] == 0 and no_vqa["ps-suite-n"] == P.SUITE[page.SUITE_SPLITS["pope"]]


def test_hours_table_names_the_model_when_there_are_several():
    one = data({"m": small_model()})
    assert page.hours_table(one).equals(one["per"]["m"])
    two = data({"m": small_model(), "deep": small_model(layers=8)})
    table = page.hours_table(two)
    assert table.index.names == ["model", "chapter"]
    assert table.loc["deep"]["total hours, 1 GPU"].sum() > table.loc["m"]["total hours, 1 GPU"].sum()
