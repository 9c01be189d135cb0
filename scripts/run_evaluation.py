# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Evaluate a checkpoint on grounding splits (`epmvg-evaluate`).

Launcher of `modeling_epmvg.commands.evaluate`.

Not named evaluate.py: Python puts this folder first on the import path, where it would shadow the `evaluate` library.
"""

import sys

from modeling_epmvg.commands.evaluate import main


if __name__ == "__main__":
    sys.exit(main())
