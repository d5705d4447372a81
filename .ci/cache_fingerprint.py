#!/usr/bin/env python3
"""Keep the book's execution cache honest.

jupyter-cache keys an executed notebook on its cell sources only, so a change in `vtr/`, in the
pinned environment or in the shipped testbed checkpoint would leave stale outputs in the book.
`make book` therefore brackets every build with this script:

    cache_fingerprint.py pre  --cache book/.jupyter_cache --build book/_build
    jupyter-book build ...
    cache_fingerprint.py post --cache book/.jupyter_cache --build book/_build --rc $?

The inputs are the files that `vtr/fingerprint.txt` (the one list of what changes results) marks as
changing results or pages; `cache_fingerprint.py hash` prints their digest (the publishing
workflow's cache key).

pre:  hash the inputs; if the hash differs from the one stored in the cache folder, wipe
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
LIST = REPO / "vtr" / "fingerprint.txt"  # the one list of what changes results
KINDS = ("results", "pages")     # what an executed chapter shows depends on
RECORD = ".vtr-inputs.json"       # in the cache folder: digest and per-file sha256
OK_MARK = ".vtr-build-ok"         # in the build folder


def read_list(path: Path = LIST) -> list[tuple[str, str]]:
    """(path, kind) entries of the list, as `vtr.fingerprint.read_list` reads them."""
    entries = []
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            entries.append((words[0], words[1]))
    return entries


def kind_of(name: str, entries: list[tuple[str, str]]) -> str | None:
    """The kind of the longest entry covering `name` (a folder entry covers every file under it)."""
    covering = [e for e in entries if name == e[0] or (e[0].endswith("/") and name.startswith(e[0]))]
    return max(covering, key=lambda e: len(e[0]))[1] if covering else None


def input_files() -> list[Path]:
    entries = read_list()
    files: set[Path] = set()
    for entry, _ in entries:
        base = REPO / entry
        for p in (base.rglob("*") if entry.endswith("/") else [base]):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" \
                    and kind_of(p.relative_to(REPO).as_posix(), entries) in KINDS:
                files.add(p)
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
    record = cache / RECORD
    try:
        old = json.loads(record.read_text())
    except (OSError, ValueError):
        old = None
    if not old or old.get("digest") != digest:
        why = ("no record of the inputs" if not old
               else f"inputs changed: {_changed(old.get('files', {}), files)}")
        print(f"cache_fingerprint: {why} -> wiping {cache} and {build} (every notebook re-executes)")
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(build, ignore_errors=True)
    elif build.exists() and not (build / OK_MARK).is_file():
        print(f"cache_fingerprint: previous build did not succeed -> wiping {build} (cache kept)")
        shutil.rmtree(build, ignore_errors=True)
    else:
        print(f"cache_fingerprint: inputs unchanged ({digest[:12]}), cache {cache} kept")
    cache.mkdir(parents=True, exist_ok=True)
    # Written now: whatever the build adds to the cache is computed from these inputs.
    record.write_text(json.dumps({"digest": digest, "files": files}, indent=1, sort_keys=True) + "\n")
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
