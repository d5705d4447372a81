"""DyVTE, dynamic visual-token exit (arXiv 2411.19628, NeurIPS 2025).

Paper: a lightweight hyper-network per decoder layer reads the text tokens' state and decides to
remove ALL visual tokens after that layer. Public code: router input = concat(mean of the text
tokens after the image, the last prompt token's state); MLP 2d -> hidden -> 2 logits; labels from
running the model with and without access to the image after a layer ("exit" when the greedy
answers agree and the loss without the image is < 1.03x the loss with it); only routers trained.

Here (same design, made batch-aware): router `l` reads the input of decoder layer l+1 (= the
output of layer l) and decides whether sample b's visual tokens exit before layer l+1. Each sample
exits at the first layer whose router fires (p_exit > threshold); afterwards it has no visual
tokens (hidden states, positions and the KV cache of later layers hold none). Router l = 0 would
decide before layer 1; the last layer has no router. Training: `vtr.methods.dyvte_train`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..engine.policy import Policy
from .base import ModelInfo, check_budget, check_number, option_error, register


class Routers(torch.nn.Module):
    """One MLP per decision point: 2d -> hidden -> 2 (stay, exit)."""

    def __init__(self, n_layers: int, d: int, hidden: int = 64):
        super().__init__()
        self.n_layers, self.d, self.hidden = n_layers, d, hidden
        self.mlps = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(2 * d, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 2))
            for _ in range(n_layers - 1))

    def forward(self, layer: int, features: torch.Tensor) -> torch.Tensor:
        """Exit logits (B, 2) of router `layer` (decides before decoder layer layer+1)."""
        return self.mlps[layer](features)

    def save(self, path: Path, meta: dict | None = None) -> None:
        from safetensors.torch import save_file

        meta = {k: str(v) for k, v in (meta or {}).items()}
        meta.update(n_layers=str(self.n_layers), d=str(self.d), hidden=str(self.hidden))
        save_file(self.state_dict(), str(path), metadata=meta)

    @classmethod
    def load(cls, path: Path) -> "Routers":
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not Path(path).exists():
            raise FileNotFoundError(f"no DyVTE routers at {path}; train them with vtr.methods.dyvte_train")
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        r = cls(int(meta["n_layers"]), int(meta["d"]), int(meta["hidden"]))
        r.load_state_dict(load_file(str(path)))
        return r.eval()


def router_features(hidden: torch.Tensor, text_query: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """concat(mean of the text tokens after the image, the last prompt token) -> (B, 2d).
    `text_query`, `last`: (B, T) bool masks as the engine marks them (`LayerView`)."""
    w = text_query.float()[..., None]
    mean = (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)
    return torch.cat([mean, hidden[torch.arange(hidden.shape[0]), last.float().argmax(1)]], -1).float()


class DyVTEPolicy(Policy):
    def __init__(self, routers: Routers, threshold: float = 0.5, min_layer: int = 1):
        self.routers, self.threshold, self.min_layer = routers, threshold, min_layer
        self.exit_layer: torch.Tensor | None = None  # (B,) layer before which the sample's vision exited

    def check_model(self, n_layers: int) -> None:
        if self.routers.n_layers != n_layers:
            raise option_error("dyvte", "routers", f"{self.routers.n_layers} layers",
                               f"routers trained for this decoder's {n_layers} layers")

    def start(self, batch_size: int) -> None:
        self.exit_layer = torch.full((batch_size,), -1, dtype=torch.long)

    @torch.no_grad()
    def keep_before(self, layer, view):
        if layer < max(1, self.min_layer):
            return None
        features = router_features(view.hidden, view.text_query, view.last)
        p = torch.softmax(self.routers(layer - 1, features), -1)[:, 1]
        fire = (p > self.threshold) & (self.exit_layer < 0)
        if not bool(fire.any()):
            return None
        self.exit_layer[fire] = layer
        return ~(view.vision & fire[:, None])


def default_routers_path(seed: int = 0) -> Path:
    from ..paths import data_dir
    return data_dir() / "testbed" / f"dyvte_routers_seed{seed}.safetensors"


@register("dyvte")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", routers: str | None = None,
         threshold: float = 0.5, seed: int = 0):
    """DyVTE decides its own cost per sample; `budget` is not a target (the cost is reported)."""
    if budget is not None:
        check_budget(budget)
    check_number("dyvte", "threshold", threshold, 0.0, 1.0)
    r = Routers.load(Path(routers) if routers else default_routers_path(seed))
    return DyVTEPolicy(r, threshold=threshold)
