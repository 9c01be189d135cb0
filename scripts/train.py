# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Train EpmVG (`epmvg-train`): the command line of `modeling_epmvg.commands.train`."""

from modeling_epmvg.commands.train import main


if __name__ == "__main__":
    main()
