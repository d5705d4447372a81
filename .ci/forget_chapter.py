#!/usr/bin/env python3
"""`make chapter N=04`: make the next `make book` re-execute one chapter.

Removes the executed copies of notebooks/<N>-*.md from the book's execution cache (jupyter-cache
records whose source is that file) and touches the file, because Sphinx re-reads, hence myst-nb
re-executes, only pages whose source is newer than the last build.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="the execution cache folder (book/.jupyter_cache)")
    ap.add_argument("--chapter", required=True, help="chapter number as in notebooks/<N>-*.md, e.g. 04")
    args = ap.parse_args()
    found = sorted((REPO / "notebooks").glob(f"{args.chapter}-*.md"))
    if len(found) != 1:
        names = ", ".join(p.name.split("-")[0] for p in sorted((REPO / "notebooks").glob("[0-9]*-*.md")))
        print(f"make chapter: no single notebooks/{args.chapter}-*.md (chapters: {names})", file=sys.stderr)
        return 2
    source = found[0].resolve()
    removed = 0
    cache_dir = REPO / args.cache
    if cache_dir.exists():
        from jupyter_cache import get_cache

        cache = get_cache(str(cache_dir))
        for rec in cache.list_cache_records():
            if rec.uri and Path(rec.uri).resolve() in (source, source.with_suffix(".ipynb")):
                cache.remove_cache(rec.pk)
                removed += 1
        for rec in cache.list_project_records():
            if Path(rec.uri).resolve() == source:
                cache.remove_nb_from_project(rec.pk)
    source.touch()
    print(f"{source.relative_to(REPO)}: {removed} cached execution(s) forgotten; the next build "
          "re-executes it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
