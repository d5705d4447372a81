#!/usr/bin/env python3
"""Print each chapter's measured execution time from a built book, as a Markdown table.

    python .ci/exec_times.py book/_build             # after `make book`
    python .ci/exec_times.py book/_build_smoke       # after `make book-smoke`
    python .ci/exec_times.py book/_build --json      # the raw records

The build writes <html>/exec-times.json (book/_ext/vtr_notebooks.py) from myst-nb's execution
records. A chapter's time is that of the execution that produced its outputs: in this build when
it was executed, else the one that filled the execution cache (jupyter-cache stores it with the
cached notebook). For the README's table of cold times, build from an empty cache (a change in
vtr/ or the lock file empties it; so does deleting book/.jupyter_cache) and run this on that build:
the last column then says "yes" for every chapter.

Standard library only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "exec-times.json"


def find(build: Path) -> Path:
    for candidate in (build / NAME, build / "html" / NAME, build / "_build" / "html" / NAME):
        if candidate.is_file():
            return candidate
    hits = sorted(p for p in build.rglob(NAME) if "jupyter_execute" not in p.parts)
    if not hits:
        raise SystemExit(f"exec_times.py: error: no {NAME} under {build} (build the book first)")
    return hits[0]


def duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def table(records: dict) -> str:
    rows = records["chapters"]
    lines = ["| chapter | execution time | executed in this build |", "|---|---:|---|"]
    for r in rows:
        mark = "yes" if r["executed_in_this_build"] else f"no (cached, ran {r['executed_at']})"
        lines.append(f"| {r['title']} (`{r['docname']}`) | {duration(r['seconds'])} | {mark} |")
    total = sum(float(r["seconds"] or 0) for r in rows)
    lines.append(f"| all chapters | {duration(total)} | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", type=Path,
                    help="the build folder (book/_build, book/_build_smoke) or its html folder")
    ap.add_argument("--json", action="store_true", help="print the records instead of the table")
    args = ap.parse_args(argv)
    path = find(args.build)
    records = json.loads(path.read_text())
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    print(table(records))
    mode = "quick (VTR_SMOKE=1)" if records.get("smoke") else "full"
    cached = [r for r in records["chapters"] if not r["executed_in_this_build"]]
    note = f"{mode} build, from {path}"
    if cached:
        note += f"; {len(cached)} chapter(s) not executed in this build (their times are from the cache)"
    print(note, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
