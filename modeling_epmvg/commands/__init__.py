# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The model-side command lines (`epmvg-train`, `epmvg-convert-transvg`, `epmvg-export-onnx`, teacher pretraining,
the benchmark): each module's `main(argv)` is a console script or runs as `python -m`. Never imported by the model
files, so nothing here ships to the Hub."""
