# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Every Python file of the repository carries the project's license line at its top."""

import subprocess

from .conftest import REPO_ROOT


LICENSE_LINE = "# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0."


def test_every_python_file_starts_with_the_license_line():
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(files) > 50
    missing = [name for name in files if LICENSE_LINE not in (REPO_ROOT / name).read_text().splitlines()[:2]]
    assert missing == []
