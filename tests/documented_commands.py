# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The shell commands of the repository's documentation: every line of every ```bash block of README.md and docs/."""

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class DocumentedCommand:
    """One command as a user types it: where it is written, its leading `NAME=value` settings and its words."""

    source: str
    words: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        settings = [f"{name}={value}" for name, value in self.environment.items()]
        return shlex.join([*settings, *self.words])


def documentation_pages() -> list[Path]:
    """README.md and every page of docs/."""
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def bash_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(line number of the first line, lines) of each ```bash block."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        fence = line.strip()
        if current is None and fence == "```bash":
            current, start = [], number + 1
        elif current is not None and fence.startswith("```"):
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        raise ValueError(f"a ```bash block opened at line {start - 1} is never closed")
    return blocks


def split_commands(lines: list[str], first_line: int) -> list[tuple[int, str]]:
    """(line number, command) with backslash continuations joined."""
    commands, pending, start = [], "", first_line
    for number, line in enumerate(lines, start=first_line):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        commands.append((start, pending + line))
        pending = ""
    if pending:
        commands.append((start, pending))
    return commands


def documented_commands(page: Path, root: Path = REPO_ROOT) -> list[DocumentedCommand]:
    """Every command of the page's ```bash blocks, comments dropped; sources are named relative to `root`."""
    commands = []
    for first_line, lines in bash_blocks(page.read_text()):
        for number, line in split_commands(lines, first_line):
            words = shlex.split(line, comments=True)
            environment = {}
            while words and ASSIGNMENT.match(words[0]):
                name, value = words.pop(0).split("=", 1)
                environment[name] = value
            if words:
                commands.append(DocumentedCommand(f"{page.relative_to(root)}:{number}", tuple(words), environment))
    return commands


def all_documented_commands() -> list[DocumentedCommand]:
    return [command for page in documentation_pages() for command in documented_commands(page)]
