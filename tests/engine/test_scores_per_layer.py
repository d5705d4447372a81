"""Attention scores are computed afresh at every layer: the engine memoises them within one layer's
hook, keyed partly by id(hidden states), and Python reuses the id of a freed tensor. Regression
test for stale scores (a later layer served an earlier layer's attention), made deterministic by
forcing every id() in the engine to collide."""
import torch

import vtr.engine.scoring as scoring
from vtr import tiny
from vtr.engine import Policy, prune


class _Recorder(Policy):
    def __init__(self):
        self.scores = {}

    def keep_before(self, layer, view):
        self.scores[layer] = view.score("last", "mean").clone()
        return None


@torch.no_grad()
def _record(model, inp):
    rec = _Recorder()
    with prune(model, rec):
        model(**inp)
    return rec.scores


def test_every_layer_gets_its_own_scores(monkeypatch):
    model = tiny.build("llava")
    inp = tiny.make_inputs(model, "llava")
    ref = _record(model, inp)
    L = model.config.get_text_config().num_hidden_layers
    assert len(ref) == L
    assert not torch.allclose(ref[1], ref[2])  # the layers really differ, so staleness would show
    monkeypatch.setattr(scoring, "id", lambda obj: 0, raising=False)  # every hidden state "the same id"
    got = _record(model, inp)
    for layer in range(L):
        torch.testing.assert_close(got[layer], ref[layer], msg=f"layer {layer}")
