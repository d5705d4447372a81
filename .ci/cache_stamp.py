#!/usr/bin/env python3
"""Keep the book's execution cache honest.

jupyter-cache keys an executed notebook on its cell sources only, so a change in `vtr/`, in the
pinned environment or in the shipped testbed checkpoint would leave stale outputs in the book.
`make book` therefore brackets every build with this script:

    cache_stamp.py pre  --cache book/.jupyter_cache --build book/_build
    jupyter-book build ...
    cache_stamp.py post --cache book/.jupyter_cache --build book/_build --rc $?

pre:  hash the inputs below; if the hash differs from the one stored in the cache folder, wipe
      the cache *and* the Sphinx build folder (Sphinx only re-reads, hence re-executes, pages whose
      source changed). Also wipe the build folder if the previous build did not succeed: Sphinx
      does not repeat the warnings of pages it does not re-read, so an incremental build after a
      failed one would pass `-W` silently. The cache survives that (it holds only successful runs).
post: mark the build successful when `--rc` is 0.

Standard library only: it runs before the package is importable.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# What the executed outputs depend on besides the notebooks' own cells (globs, relative to REPO).
# Add a pattern here when notebooks start reading another input that is not produced by the book.
INPUTS = (
    "vtr/**/*.py",
    "requirements.lock",
    "pyproject.toml",
    "data/testbed/model/model.safetensors",  # optional: hashed when present
    "data/testbed/deep/model.safetensors",
)
# Inside those, what no notebook executes (the command line, adapters to other tools).
EXCLUDE = ("vtr/cli/", "vtr/integrations/")

STAMP = ".vtr-inputs.json"        # in the cache folder: digest and per-file sha256
OK_MARK = ".vtr-build-ok"         # in the build folder


def input_files() -> list[Path]:
    files: set[Path] = set()
    for pattern in INPUTS:
        files.update(p for p in REPO.glob(pattern) if p.is_file() and "__pycache__" not in p.parts
                     and not p.relative_to(REPO).as_posix().startswith(EXCLUDE))
    return sorted(files)


def file_hashes() -> dict[str, str]:
    out = {}
    for path in input_files():
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[path.relative_to(REPO).as_posix()] = h.hexdigest()
    return out


def digest_of(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def inputs_hash() -> str:
    return digest_of(file_hashes())


def _changed(old: dict[str, str], new: dict[str, str]) -> str:
    paths = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def pre(cache: Path, build: Path) -> None:
    files = file_hashes()
    digest = digest_of(files)
    stamp = cache / STAMP
    try:
        old = json.loads(stamp.read_text())
    except (OSError, ValueError):
        old = None
    if not old or old.get("digest") != digest:
        why = "no stamp" if not old else f"inputs changed: {_changed(old.get('files', {}), files)}"
        print(f"cache_stamp: {why} -> wiping {cache} and {build} (every notebook re-executes)")
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(build, ignore_errors=True)
    elif build.exists() and not (build / OK_MARK).is_file():
        print(f"cache_stamp: previous build did not succeed -> wiping {build} (cache kept)")
        shutil.rmtree(build, ignore_errors=True)
    else:
        print(f"cache_stamp: inputs unchanged ({digest[:12]}), cache {cache} kept")
    cache.mkdir(parents=True, exist_ok=True)
    # Written now: whatever the build adds to the cache is computed from these inputs.
    stamp.write_text(json.dumps({"digest": digest, "files": files}, indent=1, sort_keys=True) + "\n")
    (build / OK_MARK).unlink(missing_ok=True)


def post(build: Path, rc: int) -> None:
    if rc == 0:
        build.mkdir(parents=True, exist_ok=True)
        (build / OK_MARK).write_text("ok\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["pre", "post", "hash"])
    ap.add_argument("--cache", type=Path, help="jupyter-cache folder")
    ap.add_argument("--build", type=Path, help="jupyter-book build folder (the one holding html/)")
    ap.add_argument("--rc", type=int, default=0, help="exit code of the build (post)")
    args = ap.parse_args(argv)
    if args.step == "hash":
        print(inputs_hash())
        return 0
    if args.build is None or (args.step == "pre" and args.cache is None):
        ap.error("--build (and --cache for pre) are required")
    if args.step == "pre":
        pre(args.cache, args.build)
    else:
        post(args.build, args.rc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
