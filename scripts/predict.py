# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Ground expressions in your own images (`epmvg-predict`).

Launcher of `modeling_epmvg.commands.predict`."""

import sys

from modeling_epmvg.commands.predict import main


if __name__ == "__main__":
    sys.exit(main())
