# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The interactive grounding app (`epmvg-app`).

Launcher of `modeling_epmvg.commands.app`."""

import sys

from modeling_epmvg.commands.app import main


if __name__ == "__main__":
    sys.exit(main())
