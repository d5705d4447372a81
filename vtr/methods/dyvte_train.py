"""Training DyVTE's routers (the labels need the model; the routers are all that train).

For each training question: the full model's greedy answer and its loss on the reference answer,
and for every exit point e (all visual tokens removed before decoder layer e) the same under
`Plan.drop_at(L, N, e, 0)`. Label "exit at e" = the greedy answer is unchanged and the loss is not
worse than `margin` x the full loss (+ `slack`, so near-zero losses do not make the ratio
meaningless; the public code uses 1.03 and no slack). Router features are the full run's hidden
states entering layer e (what the router sees at inference before anything exited).
The answer is the first token of the reference answer (`Runner.answer_tokens`: the testbed's
answers are one word; a benchmark's answer is judged by its first token, our choice where the
paper's label rule reads the whole answer). Questions: on the testbed a seeded stream (seed 100 +
training seed) disjoint from val and test; on a benchmark profile its training questions.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..engine import Policy, prompt_marks, prune
from .dyvte import Routers, router_features


@torch.no_grad()
def collect(runner, split, batch_size: int = 64, margin: float = 1.03, slack: float = 0.01, progress=True):
    model = runner.model
    L = model.config.get_text_config().num_hidden_layers
    feats, labels = [[] for _ in range(L - 1)], [[] for _ in range(L - 1)]
    for i in tqdm(range(0, len(split), batch_size), desc="dyvte labels", disable=not progress):
        chunk = split.samples[i:i + batch_size]
        inputs = runner.inputs(chunk, split)
        gold = runner.answer_tokens(chunk)
        ids, valid = inputs["input_ids"], inputs["attention_mask"].bool()
        marks = prompt_marks(ids, valid, runner.image_token_ids(), 0)  # what the engine's LayerView marks
        vision, text_query, last = marks["vision"], marks["text_query"], marks["last"]
        # one unpruned prefill; each exit run e reuses its layers < e (identical up to e) and only
        # computes layers e.. on the text tokens (PruningSession.logits_from_layer)
        with prune(model, Policy()) as session:
            out = model(**inputs, use_cache=False, output_hidden_states=True)
            full_logits = out.logits[:, -1].float()
            full_pred = full_logits.argmax(-1)
            full_loss = F.cross_entropy(full_logits, gold, reduction="none")
            for e in range(1, L):
                lg = session.logits_from_layer(e, out.hidden_states[e], valid & ~vision).float()
                loss = F.cross_entropy(lg, gold, reduction="none")
                ok = (lg.argmax(-1) == full_pred) & (loss <= margin * full_loss + slack)
                feats[e - 1].append(router_features(out.hidden_states[e], text_query, last))
                labels[e - 1].append(ok.long())
    return [torch.cat(f) for f in feats], [torch.cat(y) for y in labels]


def train_routers(feats, labels, d: int, seed: int = 0, epochs: int = 300, lr: float = 3e-3,
                  hidden: int = 64):
    """Full-batch Adam on every router; returns (routers, curve of the mean loss per epoch)."""
    torch.manual_seed(seed)
    routers = Routers(len(feats) + 1, d, hidden)
    opt = torch.optim.AdamW(routers.parameters(), lr=lr, weight_decay=1e-3)
    mu = [f.mean(0) for f in feats]
    sd = [f.std(0).clamp_min(1e-4) for f in feats]
    curve = []
    for _ in range(epochs):
        loss = sum(F.cross_entropy(routers(layer, (feats[layer] - mu[layer]) / sd[layer]), labels[layer])
                   for layer in range(len(feats)))
        loss = loss / len(feats)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
    # fold the standardisation into the first linear layer, so the router takes raw features
    with torch.no_grad():
        for layer, mlp in enumerate(routers.mlps):
            lin = mlp[0]
            lin.bias -= (lin.weight * (mu[layer] / sd[layer])[None]).sum(1)
            lin.weight /= sd[layer][None]
    return routers.eval(), curve


def fingerprint(runner, split, seed: int) -> dict:
    """What trained routers depend on (`vtr.fingerprint`): model and weights, questions, seed, code."""
    from .. import fingerprint as fp

    return {**fp.model_fingerprint(runner), **fp.split_fingerprint(split), "seed": seed,
            "code": fp.code_version()}


def train(runner, split, seed: int = 0, out=None, progress=True) -> dict:
    """Train one router per layer on `split` (questions outside val and test: the book uses the
    testbed's training generator, `vtr.testbed.batches.heldout_split`)."""
    n_questions = len(split)
    t0 = time.time()
    feats, labels = collect(runner, split, progress=progress)
    d = runner.model.config.get_text_config().hidden_size
    routers, curve = train_routers(feats, labels, d, seed=seed)
    with torch.no_grad():
        acc = [float((routers(layer, feats[layer]).argmax(-1) == labels[layer]).float().mean())
               for layer in range(len(feats))]
    info = {"seed": seed, "n_questions": n_questions,
            "exit_rate_per_layer": [float(y.float().mean()) for y in labels],
            "train_accuracy_per_router": acc, "loss_curve": curve, "seconds": round(time.time() - t0, 1),
            "fingerprint": fingerprint(runner, split, seed)}
    if out is not None:
        routers.save(out, {"seed": seed, "n_questions": n_questions})
    return info
