"""The Makefile's installs: ``make run`` sets up only what running needs, ``make test``
adds the dev extras; both set the virtualenv up themselves on a fresh machine.

Checked with ``make -n`` (what make would do, nothing run) on a copy of the Makefile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

if shutil.which("make") is None:
    pytest.skip("make is not installed", allow_module_level=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def planned(folder: Path, target: str) -> list[str]:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target, "PYTHON=python3"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def installs(lines: list[str]) -> list[str]:
    return [line for line in lines if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_on_a_fresh_machine_installs_the_runtime_only(checkout: Path) -> None:
    lines = planned(checkout, "run")
    assert lines[0] == "python3 -m venv .venv"
    assert installs(lines) == [".venv/bin/python -m pip install --quiet -e ."]
    assert lines[-1].startswith(".venv/bin/connects serve --demo")


def test_make_test_on_a_fresh_machine_installs_the_dev_extras(checkout: Path) -> None:
    lines = planned(checkout, "test")
    assert lines[0] == "python3 -m venv .venv"
    assert installs(lines) == [".venv/bin/python -m pip install --quiet -e '.[dev]'"]


def _fake_venv(folder: Path, *stamps: str) -> None:
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").touch(mode=0o755)
    cksum = subprocess.run(
        ["cksum", "pyproject.toml"], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    later = (folder / "pyproject.toml").stat().st_mtime + 10
    for stamp in stamps:
        path = folder / ".venv" / f".installed-{stamp}-{cksum}"
        path.touch()
        os.utime(path, (later, later))


def test_after_make_run_make_test_adds_the_dev_extras(checkout: Path) -> None:
    _fake_venv(checkout, "run")
    assert installs(planned(checkout, "run")) == []
    assert installs(planned(checkout, "test")) == [
        ".venv/bin/python -m pip install --quiet -e '.[dev]'"
    ]


def test_after_make_test_make_run_installs_nothing(checkout: Path) -> None:
    _fake_venv(checkout, "run", "dev")
    assert installs(planned(checkout, "run")) == []
    assert installs(planned(checkout, "test")) == []


def test_a_changed_pyproject_installs_again(checkout: Path) -> None:
    _fake_venv(checkout, "run", "dev")
    with (checkout / "pyproject.toml").open("a") as fh:
        fh.write("\n# changed\n")
    assert installs(planned(checkout, "run")) == [".venv/bin/python -m pip install --quiet -e ."]
