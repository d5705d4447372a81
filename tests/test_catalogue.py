"""The one list of methods (`vtr.catalogue`): the registry, `vtr eval --help` and `--list-methods`
read it, so a method added in one place only is caught here."""
from __future__ import annotations

import contextlib
import io

import pytest

from vtr import catalogue


def test_the_registry_builds_exactly_the_listed_methods():
    from vtr import methods

    assert methods.names() == sorted(catalogue.REGISTERED)


def test_registering_a_method_missing_from_the_list_fails():
    from vtr.methods.base import REGISTRY, register

    with pytest.raises(ValueError, match="not in vtr.catalogue.METHODS"):
        register("brand_new_method")(lambda info, **kw: None)
    assert "brand_new_method" not in REGISTRY


def _cli(argv: list[str]) -> tuple[int, str]:
    from vtr.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:  # --help exits
            code = exit_.code
    return code, out.getvalue()


def test_list_methods_prints_the_list():
    code, out = _cli(["eval", "--list-methods"])
    assert code == 0 and out.split() == list(catalogue.NAMES)


def test_help_names_every_method():
    code, out = _cli(["eval", "--help"])
    assert code == 0
    for name in catalogue.NAMES:
        assert name in out, name


def test_display_names_are_unique():
    shown = [m.display for m in catalogue.METHODS]
    assert len(shown) == len(set(shown))
    assert all(m.side in catalogue.SIDES for m in catalogue.METHODS)
