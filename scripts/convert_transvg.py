# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Convert TransVG / DETR checkpoints (`epmvg-convert-transvg`).

Launcher of `modeling_epmvg.commands.convert_transvg`."""

import sys

from modeling_epmvg.commands.convert_transvg import main


if __name__ == "__main__":
    sys.exit(main())
