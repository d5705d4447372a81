"""Data-parallel evaluation over several GPUs (or CPU processes): `torchrun --nproc_per_node N vtr eval ...`.

Nothing to configure: when the process was launched by torchrun (RANK and WORLD_SIZE in the
environment, WORLD_SIZE > 1), `session()` joins the process group (NCCL on CUDA, gloo on CPU;
barrier timeout $VTR_DIST_TIMEOUT_HOURS, default 24) and each rank takes the model onto
`cuda:LOCAL_RANK`. `evaluate()` then shards the split by sample
index (rank r takes samples r, r+N, r+2N, ...), each rank runs the ordinary resumable loop
(`vtr.evaluation.evaluate`) on its shard and appends to its own JSONL part
(`<run>.part<r>-of-<N>.jsonl`), and after a barrier rank 0 gathers every part into the one run
file in the split's original order, scores it once and broadcasts the summary to all ranks.

Resuming: rows already in the gathered run file or in any part file (also of a run with another
number of ranks) are not recomputed. A single-process run and an N-rank run produce the same run
file (given batch-size independent predictions, e.g. `--batch-size 1`, or no padding differences).
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import os
from pathlib import Path

import torch
import torch.distributed as dist


def launched() -> bool:
    """Started by torchrun (or an equivalent launcher) with more than one process."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """A process group of more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def device() -> str:
    """This rank's device: cuda:LOCAL_RANK on GPU machines, else cpu."""
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def init() -> bool:
    """Join the process group when launched by torchrun; returns whether this process joined one."""
    if not launched() or active():
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    # ranks wait at barriers for the slowest shard (a resumed run can leave one rank far more work)
    hours = float(os.environ.get("VTR_DIST_TIMEOUT_HOURS", "24"))
    dist.init_process_group(backend=backend(), timeout=datetime.timedelta(hours=hours))
    return True


@contextlib.contextmanager
def session():
    """`init()` on entry; a final barrier and `destroy_process_group()` on exit (if it initialised)."""
    started = init()
    try:
        yield
        if started:
            dist.barrier()
    finally:
        if started:
            dist.destroy_process_group()


def shard(samples: list, r: int | None = None, n: int | None = None) -> list:
    """Rank r's samples: indices r, r + n, r + 2n, ..."""
    r = rank() if r is None else r
    n = world_size() if n is None else n
    return samples[r::n]


def part_path(out: Path, r: int, n: int) -> Path:
    return out.with_name(f"{out.stem}.part{r}-of-{n}.jsonl")


def _parts(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.stem}.part*-of-*.jsonl"))


def _read_all(out: Path, fingerprint: dict | None = None) -> dict:
    from . import read_run

    done = read_run(out, fingerprint)
    for part in _parts(out):
        for k, v in read_run(part, fingerprint).items():
            done.setdefault(k, v)
    return done


class _Unscored:
    """A runner whose `score` is skipped: the shards are scored once, together, on rank 0."""

    def __init__(self, runner):
        self._runner = runner

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def score(self, samples, predictions) -> dict:
        return {}


def evaluate(runner, split, policy=None, *, out: Path, progress: bool = True, fingerprint: dict | None = None,
             **kwargs) -> dict:
    """`vtr.evaluation.evaluate` sharded over the ranks; every rank returns the same summary.
    `out` (the gathered run file) is required: the parts live next to it, each with the whole
    run's `fingerprint` in its header."""
    from . import evaluate as evaluate_one

    out = Path(out)
    r, n = rank(), world_size()
    if r == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    done = _read_all(out, fingerprint)
    mine = [s for s in shard(split.samples, r, n) if s.id not in done]
    if mine:
        local = copy.copy(split)  # same class and image source (e.g. MMBench's base64 split)
        local.samples = mine
        evaluate_one(_Unscored(runner), local, policy, out=part_path(out, r, n), progress=progress and r == 0,
                     fingerprint=fingerprint, **kwargs)
    dist.barrier()
    summary = None
    if r == 0:
        try:
            summary = _gather(runner, split, out, fingerprint)
        except Exception as err:  # tell the other ranks instead of leaving them in the broadcast
            summary = {"error": f"{type(err).__name__}: {err}"}
    box = [summary]
    dist.broadcast_object_list(box, src=0)
    if "error" in box[0]:
        raise RuntimeError(f"rank 0 failed to gather {out}: {box[0]['error']}")
    return box[0]


def _gather(runner, split, out: Path, fingerprint: dict | None = None) -> dict:
    """Rank 0: merge the parts into `out` in split order, delete them, score and cost once."""
    import json

    from . import cost
    from ..fingerprint import canonical
    from ..flops import DecoderShape

    done = _read_all(out, fingerprint)
    missing = [s.id for s in split.samples if s.id not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} samples have no record (e.g. {missing[:3]})")
    recs = [done[s.id] for s in split.samples]
    tmp = out.with_name(out.name + ".tmp")
    head = [{"type": "header", "fingerprint": canonical(fingerprint)}] if fingerprint is not None else []
    tmp.write_text("".join(json.dumps(rec) + "\n" for rec in head + recs))
    tmp.replace(out)
    for part in _parts(out):
        part.unlink()
    shape = DecoderShape.from_config(runner.model.config.get_text_config())
    summary = {"metrics": runner.score(split.samples, [rec["pred"] for rec in recs]), "n": len(recs)}
    summary.update(cost(recs, shape, runner.n_vision))
    return summary
