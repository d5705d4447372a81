"""DyVTE: the exit layer of each sample is the first layer whose router fires; tokens really leave."""
import torch

from vtr import tiny
from vtr.engine import prune
from vtr.methods.dyvte import DyVTEPolicy, Routers, router_features
from vtr.methods.dyvte_train import train_routers


class Scripted(Routers):
    """Router l fires for the samples listed in `fires[l]` (ignores its features)."""

    def __init__(self, n_layers, d, fires):
        super().__init__(n_layers, d)
        self.fires, self.seen = fires, []

    def forward(self, layer, features):
        self.seen.append(layer)
        out = torch.zeros(features.shape[0], 2)
        for b in self.fires.get(layer, ()):
            out[b, 1] = 10.0
        return out


@torch.no_grad()
def test_exit_layer_matches_router_outputs_and_cache_is_empty_after():
    model = tiny.build("llava", layers=4)
    inp = tiny.make_inputs(model, "llava", batch=3)
    d = model.config.text_config.hidden_size
    routers = Scripted(4, d, {0: [1], 1: [0, 1], 2: [2]})  # router l decides before layer l+1
    policy = DyVTEPolicy(routers)
    with prune(model, policy) as session:
        model(**inp)
    assert policy.exit_layer.tolist() == [2, 1, 3]
    vis = session.last_stats["vision_counts"]
    n = tiny.n_image_tokens(model, "llava")
    assert vis[0].tolist() == [n, n, 0, 0]
    assert vis[1].tolist() == [n, 0, 0, 0]
    assert vis[2].tolist() == [n, n, n, 0]


@torch.no_grad()
def test_dyvte_equals_vtw_when_all_exit_at_the_same_layer():
    from vtr.engine import PlanPolicy
    from vtr.plan import Plan

    model = tiny.build("llava", layers=4)
    inp = tiny.make_inputs(model, "llava", batch=2)
    n = tiny.n_image_tokens(model, "llava")
    routers = Scripted(4, model.config.text_config.hidden_size, {1: [0, 1]})
    with prune(model, DyVTEPolicy(routers)):
        a = model(**inp).logits[:, -1]
    with prune(model, PlanPolicy(Plan.drop_at(4, n, 2, 0))):
        b = model(**inp).logits[:, -1]
    torch.testing.assert_close(a, b)


def test_router_features_and_training_learn_a_separable_rule(tmp_path):
    h = torch.randn(4, 6, 8)
    tq = torch.tensor([[0, 0, 1, 1, 1, 0]] * 4, dtype=torch.bool)
    last = torch.tensor([[0, 0, 0, 0, 0, 1]] * 4, dtype=torch.bool)
    f = router_features(h, tq, last)
    torch.testing.assert_close(f[:, :8], h[:, 2:5].mean(1))
    torch.testing.assert_close(f[:, 8:], h[:, -1])
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(200, 16, generator=g) for _ in range(3)]
    labels = [(x[:, 0] > 0).long() for x in feats]
    routers, curve = train_routers(feats, labels, d=8, seed=0, epochs=200)
    acc = [(routers(layer, feats[layer]).argmax(-1) == labels[layer]).float().mean() for layer in range(3)]
    assert min(acc) > 0.95 and curve[-1] < curve[0]
    routers.save(tmp_path / "r.safetensors")
    again = Routers.load(tmp_path / "r.safetensors")
    torch.testing.assert_close(again(1, feats[1]), routers(1, feats[1]))
