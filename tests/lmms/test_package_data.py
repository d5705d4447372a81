"""lmms-eval's task files for the testbed ship inside the built package, so `--tasks
vtr_testbed_val` works from an installed wheel, not only from a source checkout."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "vtr" / "integrations" / "lmms" / "tasks"


def test_the_wheel_carries_every_task_file(tmp_path):
    # build from a copy of the package's sources: an in-tree build would leave build/ behind,
    # and a stale build/ could pass this test
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "vtr", src / "vtr", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    wheel, = tmp_path.glob("vtr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {p.relative_to(REPO).as_posix() for p in TASKS.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert wanted and wanted <= names, sorted(wanted - names)
