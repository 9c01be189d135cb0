# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The embedded default end to end (`make demo`): the command line of `modeling_epmvg.commands.demo`."""

from modeling_epmvg.commands.demo import main


if __name__ == "__main__":
    main()
