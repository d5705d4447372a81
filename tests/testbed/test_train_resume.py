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
                  eval_questions=8, checkpoint_every=3, vision_norm=1.0, scene_pool=0)


class Interrupted(Exception):
    pass


def _log(out):
    recs = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    for r in recs:
        r.pop("seconds")
    return recs


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(T, "finalize", lambda out, recipe=None: {})  # no test-split evaluation here
    return monkeypatch


@pytest.mark.parametrize("recipe", [RECIPE, T.Recipe(**{**RECIPE.__dict__, "scene_pool": 12,
                                                         "family_phases": "attribute:4"}),
                                    T.Recipe(**{**RECIPE.__dict__, "caption_steps": 2})],
                         ids=["stream", "scene-pool+family-phases", "captions"])
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
    died = recipe.caption_steps + 4
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
