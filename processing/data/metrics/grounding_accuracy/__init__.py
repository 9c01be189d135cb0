"""The `grounding_accuracy` evaluate module (this folder is what `evaluate.load` reads)."""
