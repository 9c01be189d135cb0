# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Runs a script in a fresh interpreter where the repository's packages cannot be imported (remote-code checks)."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run_without_package(script: str, *args: str, cwd: Path) -> dict:
    """Runs `python -c script args...` offline with its own modules cache and returns the JSON of its last line."""
    env = dict(os.environ, HF_MODULES_CACHE=str(cwd / "modules"), HF_HUB_OFFLINE="1", PYTHONPATH="")
    completed = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
