"""The book's citable artefacts: every labelled figure and table, their files, and the
`vtr-artefacts` directive that lists them (book/figures-and-tables.md).

While reading, every figure and every captioned table that has a label (a MyST name: `:name:` of
`glue:figure`, the argument of `glue:table`, `:name:` of `{table}`) is recorded with its chapter,
caption and kind. After reading:

- the files `vtr.chapters.figures` saved under that label (<label>.png and .svg for a figure,
  <label>.csv for a table, in `figures_dir()`: book/figures, or the smoke folder) are copied to
  <html>/figures/, and a missing one is a warning (so an error under -W);
- the `vtr-artefacts` directive is replaced, when its page is written, by one entry per artefact in
  book order: its number ("Figure 3", a link to it), label, caption, download links and a BibTeX
  entry;
- a figure's image without alt text of its own gets its caption's first sentence as alt text.
"""
from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

OUT_FOLDER = "figures"  # <html>/figures/<label>.<ext>
FILES = {"figure": ("png", "svg"), "table": ("csv",)}


# ----------------------------------------------------------------------------- collecting
def _caption_node(node):
    for child in node.children:
        if isinstance(child, (nodes.caption, nodes.title)):
            return child
    return None


def _clean(node) -> list[nodes.Node]:
    """The caption's content as plain inline nodes that render on any page: text, math, code,
    emphasis; references and citations become their text."""
    out: list[nodes.Node] = []
    for child in node.children:
        if isinstance(child, nodes.Text):
            out.append(nodes.Text(str(child)))
        elif isinstance(child, nodes.math):
            out.append(nodes.math(child.astext(), child.astext()))
        elif isinstance(child, nodes.literal):
            out.append(nodes.literal(child.astext(), child.astext()))
        elif isinstance(child, (nodes.emphasis, nodes.strong)):
            out.append(type(child)("", "", *_clean(child)))
        elif isinstance(child, (nodes.system_message, nodes.target)):
            continue
        elif isinstance(child, addnodes.pending_xref) and child.get("refdomain") in ("std", "cite"):
            out.append(child.deepcopy())  # {ref}, {numref}, {doc}, {cite}: resolved on the listing
        elif isinstance(child, nodes.Element):
            out.extend(_clean(child) if child.children else [nodes.Text(child.astext())])
    return out


def _caption_tex(node) -> str:
    """The caption as BibTeX-safe text: math kept as $...$, other text escaped."""
    parts = []
    for child in node.children:
        if isinstance(child, nodes.math):
            parts.append(f"${child.astext()}$")
        elif isinstance(child, nodes.Text):
            parts.append(_tex_escape(str(child)))
        elif isinstance(child, (nodes.system_message, nodes.target)):
            continue
        elif isinstance(child, addnodes.pending_xref) and child.get("refdomain") == "cite":
            continue  # a citation has no place in a title
        elif isinstance(child, nodes.Element):
            parts.append(_caption_tex(child))
    return "".join(parts)


def _tex_escape(text: str) -> str:
    return re.sub(r"([&%#_{}])", r"\\\1", text).replace("~", r"\textasciitilde{}")


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    # a sentence ends at . ! ? followed by a capital; never inside $...$
    in_math = False
    for i, ch in enumerate(text):
        if ch == "$":
            in_math = not in_math
        elif not in_math and ch in ".!?" and text[i + 1:i + 2] == " " and text[i + 2:i + 3].isupper():
            return text[:i]
    return text.rstrip(".")


_FILE_NAME = re.compile(r"[\w./-]+\.(?:png|svg|jpe?g|gif)")


def _describe_images(app, doctree, docname) -> None:
    """A figure's image is described by the figure's caption (its first sentence) when it has no alt
    text of its own: myst-nb leaves a glued figure's image without one, and the HTML writer then
    falls back to its hashed file name, which tells a screen reader nothing."""
    for figure in doctree.findall(nodes.figure):
        caption = _caption_node(figure)
        if caption is None:
            continue
        text = _first_sentence(caption.astext())
        for image in figure.findall(nodes.image):
            alt = image.get("alt", "")
            if text and (not alt or alt == image.get("uri") or _FILE_NAME.fullmatch(alt)):
                image["alt"] = text


def _collect(app, doctree) -> None:
    env = app.env
    found = []
    for node in doctree.findall(lambda n: isinstance(n, (nodes.figure, nodes.table))):
        kind = "figure" if isinstance(node, nodes.figure) else "table"
        caption = _caption_node(node)
        if not node.get("names") or not node.get("ids") or caption is None:
            continue  # unlabelled or uncaptioned: not numbered, not citable
        found.append({
            "kind": kind, "label": node["names"][0], "id": node["ids"][0],
            "caption": _clean(caption), "caption_tex": _caption_tex(caption),
        })
    store = _store(env)
    store.pop(env.docname, None)
    if found:
        store[env.docname] = found


def _store(env) -> dict:
    if not hasattr(env, "vtr_artefacts"):
        env.vtr_artefacts = {}
    return env.vtr_artefacts


def _purge(app, env, docname) -> None:
    _store(env).pop(docname, None)
    _pages(env).discard(docname)


def _merge(app, env, docnames, other) -> None:
    for docname in docnames:
        if docname in getattr(other, "vtr_artefacts", {}):
            _store(env)[docname] = other.vtr_artefacts[docname]
        if docname in getattr(other, "vtr_artefact_pages", ()):
            _pages(env).add(docname)


def book_order(env) -> list[str]:
    """Documents in the order of the book (the toctree, depth first from the root)."""
    order, seen = [], set()

    def walk(doc):
        if doc in seen:
            return
        seen.add(doc)
        order.append(doc)
        for child in env.toctree_includes.get(doc, ()):
            walk(child)

    walk(env.config.root_doc)
    return order + sorted(set(env.found_docs) - seen)


def artefacts(env) -> list[tuple[str, dict]]:
    store = _store(env)
    return [(doc, item) for doc in book_order(env) for item in store.get(doc, [])]


# ----------------------------------------------------------------------------- files
def figures_dir() -> Path:
    from vtr.chapters.figures import figures_dir as where

    return where()


def _copy_files(app, env) -> None:
    if app.builder.format != "html":
        return
    src_dir = figures_dir()
    out = Path(app.outdir) / OUT_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    labels: dict[str, str] = {}
    for doc, item in artefacts(env):
        if item["label"] in labels:
            logger.warning(f"label {item['label']!r} is used in {labels[item['label']]} and {doc}",
                           location=doc)
        labels[item["label"]] = doc
        for ext in FILES[item["kind"]]:
            src = src_dir / f"{item['label']}.{ext}"
            if not src.is_file():
                logger.warning(
                    f"{item['kind']} {item['label']!r}: {src} is missing (save it with "
                    f"vtr.chapters.figures.save_{item['kind']}(..., {item['label']!r}) and "
                    "re-execute the chapter)", location=doc)
                continue
            shutil.copyfile(src, out / src.name)


# ----------------------------------------------------------------------------- the listing
class ArtefactsNode(nodes.General, nodes.Element):
    """Placeholder for the listing, replaced in ArtefactsTransform once every page is read."""


class ArtefactsDirective(SphinxDirective):
    has_content = False

    def run(self):
        _pages(self.env).add(self.env.docname)
        return [ArtefactsNode()]


def _pages(env) -> set:
    """Documents holding a listing (rewritten whenever any document was read)."""
    if not hasattr(env, "vtr_artefact_pages"):
        env.vtr_artefact_pages = set()
    return env.vtr_artefact_pages


def _listing_pages(app, env):
    return sorted(_pages(env))


def _citation_info(app) -> dict:
    config = app.config
    root = Path(app.srcdir).parent
    version = ""
    cff = root / "CITATION.cff"
    if cff.exists():
        for line in cff.read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "version":
                version = value.strip().strip("'\"")
    year = (re.search(r"\d{4}", str(config.copyright or "")) or [""])[0]
    return {"title": config.html_title or config.project, "author": config.author or "", "year": year,
            "version": version or config.release or config.version or ""}


def bibtex(info: dict, chapter: str, item: dict, files: list[str]) -> str:
    kind = item["kind"]
    # (a dropped citation leaves a space before the punctuation that followed it)
    sentence = _first_sentence(re.sub(r"\s+([,.;:)])", r"\1", item["caption_tex"])).strip()
    title = f"{sentence} ({kind} {_tex_escape(item['label'])})"
    version = f", version {info['version']}" if info["version"] else ""
    what = "Image" if kind == "figure" else "Data"
    lines = [
        f"@misc{{vtr{info['year']}{item['label']},",
        f"  title        = {{{title}}},",
        f"  author       = {{{{{info['author']}}}}},",
        f"  year         = {{{info['year']}}},",
        f"  howpublished = {{In: {_tex_escape(info['title'])}{version}, chapter "
        f"``{_tex_escape(chapter)}'', {kind} label \\texttt{{{_tex_escape(item['label'])}}}}},",
        f"  note         = {{{what}: {', '.join(_tex_escape(f) for f in files)}}},",
        "}",
    ]
    return "\n".join(lines)


def _repo_relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class ArtefactsTransform(SphinxPostTransform):
    default_priority = 8  # before references are resolved (the entries hold none)

    def run(self, **kwargs) -> None:
        placeholders = list(self.document.findall(ArtefactsNode))
        if not placeholders:
            return
        for node in placeholders:
            node.replace_self(self._listing())
        if any(True for _ in self.document.findall(nodes.math)):
            # MathJax is loaded on pages that had math when read: this one has it now
            self.env.get_domain("math").data["has_equations"][self.env.docname] = True

    def _listing(self) -> list[nodes.Node]:
        env, app = self.env, self.app
        here = env.docname
        info = _citation_info(app)
        root = Path(app.srcdir).parent
        src_dir = figures_dir()
        out, current = [], None
        items = artefacts(env)
        if not items:
            logger.warning("the book has no labelled figure or table to list", location=here)
        for doc, item in items:
            if doc != current:
                current = doc
                title = env.titles[doc].astext() if doc in env.titles else doc
                rubric = nodes.rubric("", "")
                rubric += nodes.reference("", title, internal=True,
                                          refuri=app.builder.get_relative_uri(here, doc))
                out.append(rubric)
            number = env.toc_fignumbers.get(doc, {}).get(item["kind"], {}).get(item["id"])
            fmt = env.config.numfig_format.get(item["kind"], "%s")
            name = fmt % ".".join(map(str, number)) if number else item["kind"].capitalize()
            box = nodes.container(classes=["vtr-artefact", f"vtr-artefact-{item['kind']}"],
                                  ids=[f"artefact-{item['label']}"])
            head = nodes.paragraph(classes=["vtr-artefact-head"])
            head += nodes.reference("", name, internal=True, classes=["vtr-artefact-link"],
                                    refuri=f"{app.builder.get_relative_uri(here, doc)}#{item['id']}")
            head += nodes.Text(" \u00b7 label ")
            head += nodes.literal(item["label"], item["label"], classes=["vtr-artefact-label"])
            box += head
            caption = nodes.paragraph("", "", *[n.deepcopy() for n in item["caption"]],
                                      classes=["vtr-artefact-caption"])
            for xref in caption.findall(addnodes.pending_xref):
                xref["refdoc"] = here  # links relative to this page
            box += caption
            files = nodes.paragraph(classes=["vtr-artefact-files"])
            files += nodes.Text("Download: ")
            for i, ext in enumerate(FILES[item["kind"]]):
                if i:
                    files += nodes.Text(" \u00b7 ")
                uri = posixpath.relpath(f"{OUT_FOLDER}/{item['label']}.{ext}", posixpath.dirname(here) or ".")
                files += nodes.reference("", ext.upper(), refuri=uri, classes=["vtr-download"])
            box += files
            paths = [_repo_relative(src_dir / f"{item['label']}.{ext}", root) for ext in FILES[item["kind"]]]
            chapter = env.titles[doc].astext() if doc in env.titles else doc
            text = bibtex(info, chapter, item, paths)
            block = nodes.literal_block(text, text, language="bibtex", classes=["vtr-artefact-bibtex"])
            box += block
            out.append(box)
        return out


def setup(app):
    app.add_node(ArtefactsNode)
    app.add_directive("vtr-artefacts", ArtefactsDirective)
    app.connect("doctree-read", _collect)
    app.connect("doctree-resolved", _describe_images)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _copy_files)
    app.connect("env-updated", _listing_pages)
    app.add_post_transform(ArtefactsTransform)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
