# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
What every command line shares: one flag style and one error surface.

- Flags are written in transformers' `HfArgumentParser` style (`--output_dir`); the dash spelling (`--output-dir`)
  is accepted for every option, as `HfArgumentParser` already does for dataclass fields.
- Expected failures (bad input, bad flags, a missing folder, a refused checkpoint) print `<command>: error: <message>`
  and exit 1 (2 for a usage error), without a traceback; unexpected ones keep theirs. `--debug` (or the environment
  variable `EPMVG_DEBUG=1`) shows the traceback of expected ones too.
"""

import os
import sys
import traceback
from collections.abc import Callable

from transformers import HfArgumentParser


DEBUG_FLAG = "--debug"
DEBUG_ENVIRONMENT_VARIABLE = "EPMVG_DEBUG"
DEBUG_EPILOG = f"{DEBUG_FLAG} (or {DEBUG_ENVIRONMENT_VARIABLE}=1) shows the traceback of an error."


class EpmVGUsageError(ValueError):
    """A flag value the parser accepted but the command cannot use (exit status 2, like argparse's own errors)."""


# the failures a user can fix: their message says how, so the traceback only hides it
EXPECTED_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError)


class EpmVGArgumentParser(HfArgumentParser):
    """
    `HfArgumentParser` whose plain options also accept the other spelling: `--batch_size` and `--batch-size` are
    one flag. Dataclass fields get both spellings from `HfArgumentParser` itself.
    """

    def __init__(self, dataclass_types=(), **kwargs):
        kwargs.setdefault("epilog", DEBUG_EPILOG)
        super().__init__(dataclass_types, **kwargs)

    def add_argument(self, *names, **kwargs):
        spellings = list(names)
        for name in names:
            if name.startswith("--"):
                for other in ("--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")):
                    if other not in spellings and other not in self._option_string_actions:
                        spellings.append(other)
        return super().add_argument(*spellings, **kwargs)


def _debug_requested(argv: list[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENVIRONMENT_VARIABLE, "").lower() in ("1", "true", "yes")


def run_command(
    prog: str,
    body: Callable[[list[str]], int | None],
    argv: list[str] | None = None,
    expected: tuple[type[BaseException], ...] = (),
) -> int:
    """
    Runs a command's `body(argv)` behind the shared error surface and returns the exit status.

    Args:
        prog (`str`): the command's name as users type it (`epmvg-train`), the prefix of its error lines.
        body (`Callable[[list[str]], int | None]`): parses `argv` and does the work; returns the exit status
            (`None` is success).
        argv (`list[str]`, *optional*): the arguments; default `sys.argv[1:]`. `--debug` is taken out of them.
        expected (`tuple[type[BaseException], ...]`, *optional*): the command's own expected failures besides
            `EXPECTED_ERRORS` (e.g. the trainer's non-finite loss).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    argv = [argument for argument in argv if argument != DEBUG_FLAG]
    try:
        status = body(argv)
    except SystemExit as exit_:  # argparse's usage errors (2) and --help (0) have printed their own lines
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else _report(prog, exit_.code))
    except EXPECTED_ERRORS + expected as error:
        if debug:
            traceback.print_exc()
        return _report(prog, error, 2 if isinstance(error, EpmVGUsageError) else 1)
    return 0 if status is None else int(status)


def _report(prog: str, error: BaseException | str, status: int = 1) -> int:
    message = str(error).strip() or type(error).__name__
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status


__all__ = [
    "DEBUG_ENVIRONMENT_VARIABLE",
    "EXPECTED_ERRORS",
    "EpmVGArgumentParser",
    "EpmVGUsageError",
    "run_command",
]
