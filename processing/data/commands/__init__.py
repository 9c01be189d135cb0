# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The data-side command lines (`epmvg-evaluate`, `epmvg-predict`): each module's `main(argv)` is a console script."""
