# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The `grounding_accuracy` evaluate module (this folder is what `evaluate.load` reads)."""
