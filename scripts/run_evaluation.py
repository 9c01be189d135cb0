# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Evaluate a checkpoint on grounding splits (`epmvg-evaluate`): see `processing.data.commands.evaluate`."""

from processing.data.commands.evaluate import main


if __name__ == "__main__":
    main()
