# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Export to ONNX (`epmvg-export-onnx`).

Launcher of `modeling_epmvg.commands.export_onnx`."""

import sys

from modeling_epmvg.commands.export_onnx import main


if __name__ == "__main__":
    sys.exit(main())
