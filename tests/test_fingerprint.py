"""`vtr.fingerprint`: the code version covers files that exist and changes with any of them."""
from pathlib import Path

import vtr
from vtr import fingerprint as fp


def test_every_result_code_path_exists():
    root = Path(vtr.__file__).parent
    assert [p for p in fp.RESULT_CODE if not (root / p).exists()] == []


def test_code_version_follows_the_result_code(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "plan.py").write_text("a = 1\n")
    (pkg / "engine" / "core.py").write_text("b = 2\n")
    (pkg / "fingerprint.py").write_text("")
    monkeypatch.setattr(fp, "RESULT_CODE", ("plan.py", "engine"))
    monkeypatch.setattr(fp, "__file__", str(pkg / "fingerprint.py"))
    versions = []
    for text in ("b = 2\n", "b = 3\n"):
        (pkg / "engine" / "core.py").write_text(text)
        fp.code_version.cache_clear()
        versions.append(fp.code_version())
    fp.code_version.cache_clear()
    assert versions[0] != versions[1]


def test_check_names_every_differing_field():
    import pytest

    with pytest.raises(fp.FingerprintError, match=r"other limit, model \(limit: 4 there, 8 now; model: 'a' there"):
        fp.check({"model": "a", "limit": 4, "seed": 0}, {"model": "b", "limit": 8, "seed": 0}, "run.jsonl")
