# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The one home of every command line: each module's `main(argv=None) -> int` is a console script (`epmvg-<name>`),
runs as `python -m modeling_epmvg.commands.<name>` and has a thin launcher in scripts/. `cli` holds what they share
(flag spellings, the error surface), `checkpoints` the one loader of a saved model and its processor. Never imported
by the model files, so nothing here ships to the Hub.
"""
