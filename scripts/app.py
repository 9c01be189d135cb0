# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The interactive grounding app in the browser (`epmvg-app`); see processing/app/cli.py for the options."""

import sys

from processing.app import main


if __name__ == "__main__":
    sys.exit(main())
