# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Code marked `# Copied from transformers.<module>.<name> [with Old->New]` is still the installed transformers' code,
as transformers' own `make fix-copies` checks its models: a change upstream shows here, not as a silent drift.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

from .conftest import REPO_ROOT


MARKER = re.compile(r"^# Copied from (transformers(?:\.\w+)+)(?: with (.+))?$")


def copied_blocks() -> list[tuple[str, str, str, str]]:
    """(file:line, dotted source name, replacements, the block's code) for every marker in the shipped packages."""
    blocks = []
    for path in sorted([*REPO_ROOT.glob("modeling_epmvg/*.py"), *REPO_ROOT.glob("processing/*.py")]):
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            match = MARKER.match(line)
            if match:
                end = index + 2
                # the block runs to the next top-level statement (a definition, a decorator or a comment)
                while end < len(lines) and (not lines[end] or lines[end][0] in " \t)"):
                    end += 1
                code = "\n".join(lines[index + 1 : end]).rstrip()
                blocks.append((f"{Path(path).name}:{index + 1}", match.group(1), match.group(2) or "", code))
    return blocks


def upstream_code(dotted: str, replacements: str) -> str:
    module_name, name = dotted.rsplit(".", 1)
    try:
        source = inspect.getsource(getattr(importlib.import_module(module_name), name))
    except (ImportError, AttributeError) as error:
        pytest.skip(f"transformers moved {dotted} ({error}): update the marker to its new place")
    for replacement in filter(None, (part.strip() for part in replacements.split(","))):
        old, new = replacement.split("->")
        source = source.replace(old.strip(), new.strip())
    return source.rstrip()


BLOCKS = copied_blocks()


def test_the_shipped_code_has_copied_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("where, dotted, replacements, code", BLOCKS, ids=[block[0] for block in BLOCKS])
def test_a_copied_block_matches_the_installed_transformers(where, dotted, replacements, code):
    assert code == upstream_code(dotted, replacements), f"{where} no longer matches {dotted}"
