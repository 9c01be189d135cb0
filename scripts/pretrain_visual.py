# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Pretrain EpmVG's visual branch (`epmvg-pretrain-visual`).

Launcher of `modeling_epmvg.commands.pretrain_visual`."""

import sys

from modeling_epmvg.commands.pretrain_visual import main


if __name__ == "__main__":
    sys.exit(main())
