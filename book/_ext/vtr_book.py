"""Sphinx extension of the book (loaded through `sphinx.local_extensions` in _config.yml).

1. Puts the notebook execution cache in a fixed place. `execute.cache` in _config.yml is a folder
   name; jupyter-cache would resolve it against the current directory. Here it is resolved against
   the book folder, with the profile's name for a profile other than the testbed (VTR_PROFILE) and a
   `_smoke` suffix when VTR_SMOKE=1, so a build never reuses or pollutes another's executed notebooks:
       book/.jupyter_cache        full build
       book/.jupyter_cache_smoke  smoke build
       book/.jupyter_cache_tiny   tiny profile (make book-tiny)
   Both live outside book/_build*, so `make clean` keeps them. (The Makefile passes the same
   folders to .ci/cache_fingerprint.py, which wipes a cache when the code it was executed with changes.)

2. Removes duplicated inline <script> tags. Sphinx 7.4 registers an inline script added after the
   builder started (sphinx-thebe adds `const THEBE_JS_URL = ...` on env-before-read-docs) once
   with filename None and again, in prepare_writing, with filename '', which compare unequal; the
   page then declares the same `const` twice and the browser reports "Identifier 'THEBE_JS_URL'
   has already been declared". Identical scripts are dropped here, keeping the first.

3. Takes the repository URL from one place: `repository-code` in the top-level CITATION.cff when
   it is set, else, in a GitHub Actions run, the repository being built (GITHUB_SERVER_URL /
   GITHUB_REPOSITORY: a fork publishes with its own URL). With a URL the pages get the repository
   button; without one (a local build of an unpublished clone) they get none.

4. Loads the book's other extensions (modules beside this one) and its stylesheet
   (static/vtr-book.css):
       vtr_tables     the {glue:table} directive: numbered, captioned tables from save_table
       vtr_artefacts  every labelled figure and table, their files, the "Figures and tables" page
       vtr_notebooks  code collapsed by default, executed .ipynb downloads, execution times
"""
from __future__ import annotations

import os
from pathlib import Path


def _smoke() -> bool:
    return os.environ.get("VTR_SMOKE", "") not in ("", "0")


def _place_cache(app, config) -> None:
    path = Path(config.nb_execution_cache_path or ".jupyter_cache")
    if not path.is_absolute():
        path = Path(app.srcdir) / path
    profile = os.environ.get("VTR_PROFILE") or "testbed"
    if profile != "testbed":
        path = path.with_name(f"{path.name}_{profile}")
    if _smoke():
        path = path.with_name(path.name + "_smoke")
    config.nb_execution_cache_path = str(path)


def repository_url(root: Path) -> str:
    """The book's repository URL (see 3. above); "" when none is known."""
    cff = root / "CITATION.cff"
    if cff.exists():
        for line in cff.read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "repository-code" and value.strip().strip("'\""):
                return value.strip().strip("'\"")
    server, repo = os.environ.get("GITHUB_SERVER_URL", ""), os.environ.get("GITHUB_REPOSITORY", "")
    return f"{server}/{repo}" if server and repo else ""


def _set_repository(app, config) -> None:
    url = repository_url(Path(app.srcdir).parent)
    if url:
        options = dict(config.html_theme_options or {})
        options.update(repository_url=url, use_repository_button=True, path_to_docs="book")
        config.html_theme_options = options


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", None),
               tuple(sorted((getattr(js, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def _add_static(app, config) -> None:
    config.html_static_path = list(config.html_static_path or []) + [str(STATIC)]


STATIC = Path(__file__).resolve().parent / "static"


def setup(app):
    for name in ("vtr_tables", "vtr_artefacts", "vtr_notebooks"):
        app.setup_extension(name)
    app.connect("config-inited", _add_static, priority=400)
    app.add_css_file("vtr-book.css")
    # priority < 500: runs before myst-nb reads the value on builder-inited
    app.connect("config-inited", _place_cache, priority=400)
    app.connect("config-inited", _set_repository, priority=400)
    # late: after the themes and extensions have added their per-page scripts
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
