# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Ground expressions in your own images (`epmvg-predict`): see `processing.data.commands.predict`."""

import sys

from processing.data.commands.predict import main


if __name__ == "__main__":
    sys.exit(main())
