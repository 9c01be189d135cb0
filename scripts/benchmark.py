# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Speed and memory benchmark on random weights: the command line of `modeling_epmvg.commands.benchmark`."""

from modeling_epmvg.commands.benchmark import main


if __name__ == "__main__":
    main()
