import numpy as np, torch
from vtr.testbed import scenes
from vtr.testbed.model import load_testbed, pixel_values
torch.set_num_threads(2)
m, tok = load_testbed()
rng = np.random.default_rng(0)
scs = [scenes.sample_scene(rng, 1) for _ in range(256)]
with torch.no_grad():
    px = pixel_values([scenes.render(s) for s in scs])
    f = m.model.get_image_features(pixel_values=px)
    f = f.pooler_output if hasattr(f, "pooler_output") else f
    f = torch.stack(list(f)) if isinstance(f, (list, tuple)) else f
    print("feat", f.shape, f.norm(dim=-1).mean())
    out = m.model.vision_tower(px, output_hidden_states=True)
    print([h.norm(dim=-1).mean().item() for h in out.hidden_states], out.last_hidden_state.norm(dim=-1).mean().item())
    print("same last:", torch.allclose(out.hidden_states[-1], out.last_hidden_state))
labs = [scenes.patch_labels(s) for s in scs]
X = torch.stack([f[i][torch.from_numpy(labs[i]["colour"] > 0)].mean(0) for i in range(256)])
y = torch.tensor([list(scenes.COLOURS).index(s.objects[0].colour) for s in scs])
Xb = torch.stack([f[i].mean(0) for i in range(256)])
for name, Z in (("fg-mean", X), ("all-mean", Xb)):
    W = torch.zeros(Z.shape[1], 6, requires_grad=True); opt = torch.optim.Adam([W], 1e-2)
    Zn = (Z - Z.mean(0)) / (Z.std(0) + 1e-6)
    for _ in range(300):
        l = torch.nn.functional.cross_entropy(Zn[:192] @ W, y[:192]); opt.zero_grad(); l.backward(); opt.step()
    print(name, "probe acc", ((Zn[192:] @ W).argmax(-1) == y[192:]).float().mean().item())
