# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The embedded default end to end (`epmvg-demo`, `make demo`).

Launcher of `modeling_epmvg.commands.demo`."""

import sys

from modeling_epmvg.commands.demo import main


if __name__ == "__main__":
    sys.exit(main())
