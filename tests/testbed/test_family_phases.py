"""`Recipe.family_phases`: stage 1 opens with conversations about chosen families only."""
import numpy as np
import pytest

from vtr.testbed import scenes, tasks
from vtr.testbed import train as T
from vtr.testbed.model import WordTokenizer


def test_schedule_is_parsed_in_order_and_then_asks_every_family():
    plan = T.family_schedule("attribute:3,count+exist:2", lm_steps=10)
    assert plan == [(("attribute",), 3), (("count", "exist"), 2)]
    assert [T._families_at(plan, s) for s in (0, 1, 2, 3, 4, 5, 9)] == \
        [("attribute",)] * 3 + [("count", "exist")] * 2 + [tasks.FAMILIES] * 2
    assert T.family_schedule("", lm_steps=10) == []


@pytest.mark.parametrize("bad, words", [("colour:3", "colour"), ("attribute", "families:steps"),
                                        ("attribute:0", "steps > 0"), ("attribute:x", "families:steps"),
                                        ("attribute:8,count:3", "more than stage 1's 10")])
def test_bad_phases_are_named(bad, words):
    with pytest.raises(ValueError, match=words):
        T.family_schedule(bad, lm_steps=10)


CUES = {"attribute": "what colour", "count": "how many", "exist": "is there", "position": "where is",
        "text": "what word", "choice": "which shape"}


def _families_asked(families, n=40, max_turns=4):
    rng, tok = np.random.default_rng(0), WordTokenizer()
    asked, turns = set(), []
    for _ in range(n):
        scene = scenes.sample_scene(rng, 4)
        ids, targets = T.conversation(scene, rng, tok, max_turns, families)
        text = tok.decode(ids)
        for fam, cue in CUES.items():
            if cue in text:
                asked.add(fam)
        turns.append(sum(k == "main" for _, _, k in targets))
    return asked, turns


def test_a_one_family_phase_asks_that_family_several_times_per_image():
    asked, turns = _families_asked(("position",))
    assert asked <= {"position", "text"}  # text only when no object is unique (fallback)
    assert "position" in asked and max(turns) == 4


def _asked_per_conversation(families, n=40):
    rng, tok = np.random.default_rng(0), WordTokenizer()
    out = []
    for _ in range(n):
        ids, _ = T.conversation(scenes.sample_scene(rng, 4), rng, tok, 4, families)
        text = tok.decode(ids)
        out.append([fam for fam, cue in CUES.items() for _ in range(text.count(cue))])
    return out


def test_all_families_give_distinct_families_per_conversation():
    convs = _asked_per_conversation(tasks.FAMILIES)
    assert all(len(c) == len(set(c)) for c in convs) and max(map(len, convs)) > 1


def _rebuilt(command: str) -> T.Recipe:
    import argparse
    import shlex

    from vtr.cli import testbed as cli_testbed

    parser = argparse.ArgumentParser()
    cli_testbed.register(parser.add_subparsers())
    return cli_testbed.recipe_from_args(parser.parse_args(shlex.split(command)[1:]))


@pytest.mark.parametrize("recipe", [
    T.Recipe(vision_norm=1.0, family_phases="attribute:200,count+exist:100", curriculum=0.0, batch=8,
             scene_pool=6000, caption_steps=300, caption_every=2),
    T.Recipe(vision_norm=T.Recipe().vision_norm + 0.5, family_phases="", seed=3),
    T.Recipe(family_phases="position:10" if T.Recipe().family_phases != "position:10" else "text:10"),
], ids=["many-fields", "vision-norm", "family-phases"])
def test_the_recorded_command_rebuilds_the_recipe(recipe):
    assert _rebuilt(T.train_command(recipe)) == recipe


def test_the_default_recipe_is_the_bare_command():
    assert T.train_command(T.Recipe()) == "vtr testbed train --seed 0 --threads 2"
    assert _rebuilt("vtr testbed train --seed 0 --threads 2") == T.Recipe()


def test_unknown_recipe_field_is_named():
    from vtr.cli import testbed as cli_testbed
    from vtr.errors import InputError

    with pytest.raises(InputError, match="colour_steps"):
        cli_testbed.recipe_overrides(["colour_steps=3"])
    with pytest.raises(InputError, match="not a int"):
        cli_testbed.recipe_overrides(["batch=many"])


def test_scene_pool_is_fixed_by_the_seed_and_honours_the_objects_curriculum():
    a, b = T.ScenePool(200, seed=0), T.ScenePool(200, seed=0)
    assert a.scenes == b.scenes and T.ScenePool(200, seed=1).scenes != a.scenes
    rng = np.random.default_rng(0)
    drawn = [a.draw(rng, 2) for _ in range(100)]
    assert all(len(s.objects) <= 2 for s in drawn) and all(s in a.scenes for s in drawn)
    assert len({id(s) for s in (a.draw(rng, 6) for _ in range(1000))}) <= 200
    with pytest.raises(ValueError, match="pool size"):
        T.ScenePool(0, seed=0)
