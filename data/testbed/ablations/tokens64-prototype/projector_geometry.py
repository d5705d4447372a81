"""Diagnostic: is the shipped projector's output dominated by one shared direction?

For 64 random scenes: image tokens after the projector (what the decoder sees) and after the
first decoder layer's input RMSNorm (what its q/k/v see). Reports the share of squared norm along
the mean token direction, and the cosine similarity between foreground patches of different shapes.
Exploratory; not part of vtr.
"""
import numpy as np
import torch

from vtr.testbed import scenes
from vtr.testbed.model import load_testbed, pixel_values

torch.set_num_threads(2)
model, _ = load_testbed()
rng = np.random.default_rng(5)
scs = [scenes.sample_scene(rng, 4) for _ in range(64)]
with torch.inference_mode():
    px = pixel_values([scenes.render(s) for s in scs])
    vit = model.model.vision_tower(px).last_hidden_state[:, 1:]
    proj = model.model.multi_modal_projector(vit)
    normed = model.model.language_model.layers[0].input_layernorm(proj)
labels = [scenes.patch_labels(s) for s in scs]
shape = np.stack([lab["shape"] for lab in labels]).ravel()  # 0 = background
for name, x in (("vit", vit), ("projector", proj), ("layer0 input norm", normed)):
    x = x.reshape(-1, x.shape[-1]).float()
    mean = x.mean(0)
    along = (x @ mean / mean.norm()) ** 2
    share = float(along.sum() / (x ** 2).sum())
    fg = torch.from_numpy(shape > 0)
    xf = torch.nn.functional.normalize(x[fg], dim=-1)
    sf = torch.from_numpy(shape[shape > 0])
    sims = xf @ xf.T
    same = sims[sf[:, None] == sf[None, :]].mean()
    diff = sims[sf[:, None] != sf[None, :]].mean()
    print(f"{name:18s} norm {float(x.norm(dim=-1).mean()):8.2f}  share on mean direction {share:.3f}  "
          f"cos fg same-shape {float(same):.3f}  different-shape {float(diff):.3f}")
