"""`vtr testbed train` is resumable: an interrupted run, started again, ends with the same weights and
the same log as an uninterrupted one (tiny model, a few steps of each stage)."""
import json

import pytest
import torch
from safetensors.torch import load_file

from vtr.testbed import train as T
from vtr.testbed.model import TestbedSpec as Spec

SPEC = Spec(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=2,
                   text_heads=2, text_intermediate=64)
RECIPE = T.Recipe(vision_steps=3, vision_batch=4, lm_steps=6, tune_steps=2, batch=2, warmup=2, eval_every=4,
                  eval_questions=8, checkpoint_every=3, vision_norm=1.0, scene_pool=0, caption_steps=0)


class Interrupted(Exception):
    pass


def _log(out):
    recs = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    for r in recs:
        r.pop("seconds")
    return recs


def _step_of_question(recipe, k):
    """Stage 1-2 step index of the k-th question-answer step (1-based), counted by hand."""
    n = recipe.caption_every
    steps = [s for s in range(recipe.caption_steps + recipe.lm_steps + recipe.tune_steps)
             if s >= recipe.caption_steps
             and not (n and s - recipe.caption_steps < recipe.lm_steps
                      and (s - recipe.caption_steps) % n == n - 1)]
    return steps[k - 1]


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(T, "finalize", lambda out, recipe=None, **kw: {})  # no test-split evaluation here
    return monkeypatch


@pytest.mark.parametrize("recipe", [RECIPE, T.Recipe(**{**RECIPE.__dict__, "scene_pool": 12,
                                                         "family_phases": "attribute:4"}),
                                    T.Recipe(**{**RECIPE.__dict__, "caption_steps": 2}),
                                    T.Recipe(**{**RECIPE.__dict__, "caption_steps": 2, "caption_every": 2})],
                         ids=["stream", "scene-pool+family-phases", "captions", "interleaved-captions"])
def test_interrupted_run_resumes_to_the_same_weights_and_log(tmp_path, quick, recipe):
    whole, split = tmp_path / "whole", tmp_path / "split"
    T.train(whole, recipe, SPEC)

    step = T._language_step
    calls = []

    def dies_at_step_5(*a, **k):  # the 5th question-answer step, after a checkpoint
        calls.append(1)
        if len(calls) == 5:
            raise Interrupted
        return step(*a, **k)

    quick.setattr(T, "_language_step", dies_at_step_5)
    with pytest.raises(Interrupted):
        T.train(split, recipe, SPEC)
    assert (split / "checkpoint" / "vision.safetensors").exists()
    died = _step_of_question(recipe, 5)
    saved = died - died % recipe.checkpoint_every  # checkpoints are taken before steps 3, 6, ...
    assert torch.load(split / "checkpoint" / "language.pt", weights_only=False)["step"] == saved
    quick.setattr(T, "_language_step", step)
    T.train(split, recipe, SPEC)

    a, b = load_file(str(whole / "model.safetensors")), load_file(str(split / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _log(whole) == _log(split)
    assert not (split / "checkpoint").exists()  # removed once the model is saved


def test_checkpoint_of_another_recipe_is_not_used(tmp_path):
    log = tmp_path / "training_log.jsonl"
    ck = T.Checkpoints(tmp_path, RECIPE, SPEC, log)
    (ck.dir / "vision.safetensors").write_bytes(b"x")
    assert T.Checkpoints(tmp_path, RECIPE, SPEC, log).has_vision()
    other = T.Recipe(**{**RECIPE.__dict__, "seed": 1})
    assert not T.Checkpoints(tmp_path, other, SPEC, log).has_vision()


def test_other_stage1_settings_keep_the_vision_tower_only(tmp_path):
    log = tmp_path / "training_log.jsonl"
    ck = T.Checkpoints(tmp_path, RECIPE, SPEC, log)
    (ck.dir / "vision.safetensors").write_bytes(b"x")
    (ck.dir / "language.pt").write_bytes(b"x")
    other = T.Recipe(**{**RECIPE.__dict__, "family_phases": "attribute:2"})
    ck = T.Checkpoints(tmp_path, other, SPEC, log)
    assert ck.has_vision() and not (ck.dir / "language.pt").exists()
    vision = T.Recipe(**{**RECIPE.__dict__, "vision_norm": 0.5})
    assert not T.Checkpoints(tmp_path, vision, SPEC, log).has_vision()


def test_checkpoint_without_its_log_is_named_not_resumed(tmp_path):
    log = tmp_path / "training_log.jsonl"
    ck = T.Checkpoints(tmp_path, RECIPE, SPEC, log)
    log.write_text('{"stage": 0}\n')
    (ck.dir / "vision.safetensors").write_bytes(b"x")
    (ck.dir / "vision.json").write_text(json.dumps({"log_bytes": log.stat().st_size, "elapsed": 1.0}))
    log.unlink()  # only checkpoint/ copied to a new output folder
    ck = T.Checkpoints(tmp_path, RECIPE, SPEC, log)
    with pytest.raises(ValueError, match="copy the whole output folder"):
        ck.resume_vision(model=None)  # refused before any weights are read


def test_interleaved_captions_replace_every_nth_question_step_of_stage_1_only():
    r = T.Recipe(caption_steps=3, caption_every=4, lm_steps=12, tune_steps=4)
    marks = [T._interleaved_caption(r, inner) for inner in range(r.lm_steps + r.tune_steps)]
    assert [i for i, m in enumerate(marks) if m] == [3, 7, 11]  # none in stage 2 (inner >= 12)
    assert not any(T._interleaved_caption(T.Recipe(caption_every=0), i) for i in range(50))


def test_negative_caption_every_is_refused():
    with pytest.raises(ValueError, match="caption_every"):
        T._interleaved_caption(T.Recipe(caption_every=-1), 0)


def _tower(folder):
    return {k: v for k, v in load_file(str(folder / "model.safetensors")).items()
            if k.startswith("vision_tower.")}


def test_deeper_decoder_reuses_the_vision_tower_without_stage_0(tmp_path, quick):
    source, deep = tmp_path / "source", tmp_path / "deep"
    T.train(source, RECIPE, SPEC)
    quick.setattr(T, "train_vision", lambda *a, **k: pytest.fail("stage 0 ran"))
    deeper = Spec(**{**SPEC.__dict__, "text_layers": 3})
    T.train(deep, RECIPE, deeper, vision_from=str(source))
    a, b = _tower(source), _tower(deep)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r for r in _log(deep) if r["stage"] == 0] == [r for r in _log(source) if r["stage"] == 0]
    assert json.loads((deep / "config.json").read_text())["text_config"]["num_hidden_layers"] == 3
    assert json.loads((deep / "training.json").read_text())["vision_from"] == str(source)


def test_vision_tower_of_another_stage_0_is_refused_naming_the_field(tmp_path, quick):
    source = tmp_path / "source"
    T.train(source, RECIPE, SPEC)
    other = T.Recipe(**{**RECIPE.__dict__, "vision_norm": 0.5})
    with pytest.raises(ValueError, match="recipe.vision_norm"):
        T.train(tmp_path / "deep", other, SPEC, vision_from=str(source))


def test_train_command_names_the_spec_and_the_reused_tower():
    from vtr.cli import build_parser
    from vtr.cli.testbed import recipe_from_args, spec_from_args

    spec = Spec(text_layers=16)
    cmd = T.train_command(T.Recipe(), spec, "testbed")
    assert cmd == "vtr testbed train --seed 0 --threads 2 --spec text_layers=16 --vision-from testbed"
    args = build_parser().parse_args(cmd.split()[1:])
    assert spec_from_args(args) == spec and recipe_from_args(args) == T.Recipe()
    assert args.vision_from == "testbed"
