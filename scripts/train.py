# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Train EpmVG with cross-modal distillation (`epmvg-train`).

Launcher of `modeling_epmvg.commands.train`."""

import sys

from modeling_epmvg.commands.train import main


if __name__ == "__main__":
    sys.exit(main())
