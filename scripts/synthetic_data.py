# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Generate the synthetic benchmark (`epmvg-synthetic-data`).

Launcher of `modeling_epmvg.commands.synthetic_data`."""

import sys

from modeling_epmvg.commands.synthetic_data import main


if __name__ == "__main__":
    sys.exit(main())
