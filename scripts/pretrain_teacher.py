# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Pretrain the embedded default's CLIP teacher (`epmvg-pretrain-teacher`).

Launcher of `modeling_epmvg.commands.pretrain_teacher`."""

import sys

from modeling_epmvg.commands.pretrain_teacher import main


if __name__ == "__main__":
    sys.exit(main())
