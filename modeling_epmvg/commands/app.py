# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
`epmvg-app`: the interactive grounding app in the browser, or (`--write-space DIR`) a Hugging Face Space of it.

    epmvg-app                                   # the `make demo` model (demo_output/model), on 127.0.0.1:7860
    epmvg-app --model user/epmvg-refcoco --trust-remote-code --port 8080
    epmvg-app --model user/epmvg-refcoco --write-space my-space
"""

import sys
import tempfile
from pathlib import Path

from .checkpoints import load_grounding_pipeline
from .cli import EpmVGArgumentParser, run_command


DEMO_MODEL = Path("demo_output") / "model"


def default_model() -> str:
    """The `make demo` output if it exists here, else a ValueError that says how to get a model."""
    if (DEMO_MODEL / "config.json").is_file():
        return str(DEMO_MODEL)
    raise ValueError(
        f"No model given and no {DEMO_MODEL} here: run `make demo` in the repository to train the embedded model, "
        "or pass --model with a checkpoint folder or Hub id (e.g. written by epmvg-train or epmvg-convert-transvg)."
    )


def build_parser() -> EpmVGArgumentParser:
    parser = EpmVGArgumentParser(prog="epmvg-app", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", help=f"checkpoint folder or Hub id (default: {DEMO_MODEL} when it exists)")
    parser.add_argument("--trust_remote_code", action="store_true", help="load the model code from the checkpoint")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the first GPU if any, else the CPU)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    parser.add_argument("--port", type=int, help="port (default: the first free one from 7860)")
    parser.add_argument("--examples", type=int, default=4, help="synthetic example scenes (default: %(default)s)")
    parser.add_argument("--write_space", metavar="DIR", help="write a Hugging Face Space for --model to DIR and exit")
    return parser


def run(argv: list[str]) -> int:
    try:  # gradio is the app extra's: imported only by this command
        from processing.app import build_interface, launch, write_space, write_synthetic_examples
    except ImportError as error:
        raise ImportError(f"epmvg-app needs the app extra: pip install 'epmvg[app]' ({error}).") from error

    args = build_parser().parse_args(argv)
    model = args.model or default_model()
    if args.write_space:
        print(f"Wrote a Space for {model} to {write_space(args.write_space, model, args.examples)}")
        return 0
    grounder = load_grounding_pipeline(model, device=args.device, trust_remote_code=args.trust_remote_code)
    with tempfile.TemporaryDirectory(prefix="epmvg-app-") as folder:
        examples = write_synthetic_examples(folder, args.examples) if args.examples > 0 else []
        launch(build_interface(grounder, examples, model), port=args.port, host=args.host)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-app`. Returns the exit status (serving blocks until interrupted)."""
    return run_command("epmvg-app", run, argv, expected=(ImportError,))


__all__ = ["build_parser", "default_model", "main"]


if __name__ == "__main__":
    sys.exit(main())
