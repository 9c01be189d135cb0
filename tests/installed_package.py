# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The package installed as users install it: README.md's `pip install` line, run from a copy of the repository into a
fresh venv (not editable). The venv reuses the test environment's dependencies through a .pth file, so nothing is
downloaded (`--no-deps --no-build-isolation --no-index`). One venv per test session (the `installed_venv` fixture of
conftest.py): tests/test_installed_package.py and the documented commands of tests/test_readme_commands.py run from it.
"""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from .conftest import REPO_ROOT
from .documented_commands import documented_commands


# the offline additions to README.md's line: the dependencies come from the test environment, nothing from an index
OFFLINE_INSTALL = ["--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed"]


def readme_installs() -> list[tuple[str, ...]]:
    """The `pip install` commands of README.md."""
    return [c.words for c in documented_commands(REPO_ROOT / "README.md") if c.words[:2] == ("pip", "install")]


def repository_copy(destination: Path) -> Path:
    """The working tree as a clone has it: tracked and untracked files that git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def install_package(root: Path) -> Path:
    """A fresh venv under `root` holding the package installed from README.md's line; returns the venv."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    # after the venv's own site-packages: the installed package comes first, the test environment's libraries next
    (site_packages(venv) / "test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    clone = repository_copy(root / "clone")
    assert readme_installs(), "README.md shows no pip install line"
    for words in readme_installs():
        completed = subprocess.run(
            [str(python), "-m", *words, *OFFLINE_INSTALL], cwd=clone, capture_output=True, text=True, timeout=600
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    shutil.rmtree(clone)  # the package runs from site-packages only
    return venv


def site_packages(venv: Path) -> Path:
    return Path(run_python(venv / "bin" / "python", "import sysconfig; print(sysconfig.get_paths()['purelib'])", venv))


def run_python(python: Path, code: str, cwd: Path) -> str:
    completed = subprocess.run([str(python), "-c", code], cwd=cwd, capture_output=True, text=True, check=True)
    return completed.stdout.strip()
