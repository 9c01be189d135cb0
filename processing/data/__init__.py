# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The data side of processing/ (never shipped to the Hub): the unified schema, the dataset sources, the synthetic
benchmark, training augmentation, the collator, the grounding metrics, visualization and the data-side commands."""
