# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The Gradio page of the grounding app: an image and expressions in, the boxes drawn with a legend and as JSON out.

This file is also copied, as it is, into the Hugging Face Space that `epmvg-app --write-space` writes, so it imports
only gradio, PIL and the drawing module (copied there too).
"""

import html
import os
from collections.abc import Callable, Sequence

import gradio as gr
import PIL.Image
import PIL.ImageOps

from processing.data.visualization import draw_boxes


# one colour per expression, in order (Tableau 10); more expressions reuse them
BOX_COLORS = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
# small images (the synthetic benchmark's are 64 px) are enlarged by a whole factor up to this side for display
DISPLAY_SIDE = 512
DISPLAY_HEIGHT = 360
# what the handler turns into a message in the page: bad input, as the pipeline raises it
INPUT_ERRORS = (ValueError, TypeError, OSError)

Grounder = Callable[[str, list[str]], list[dict]]
"""`ground(image_path, expressions)` -> one `{"box": {"xmin", "ymin", "xmax", "ymax"}, "score", "expression"}` dict
per expression, boxes in pixels of the image: the "visual-grounding" pipeline has this signature."""


def parse_expressions(text: str | None) -> list[str]:
    """
    The expressions typed in the text box, one per non-blank line. Blank text stays one (empty) expression, so the
    grounder rejects it with its own message.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines or [text or ""]


def open_image(path: str) -> PIL.Image.Image:
    """The image file at `path` as a viewer shows it (EXIF orientation applied), fully decoded."""
    with PIL.Image.open(path) as opened:
        return PIL.ImageOps.exif_transpose(opened).copy()


def color_hex(index: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*BOX_COLORS[index % len(BOX_COLORS)])


def draw_results(image: PIL.Image.Image, results: Sequence[dict]) -> PIL.Image.Image:
    """`image` with each result's box in its colour, enlarged by a whole factor when small (boxes scale with it)."""
    factor = max(1, DISPLAY_SIDE // max(image.size))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), PIL.Image.Resampling.NEAREST)
    boxes = [[result["box"][key] * factor for key in ("xmin", "ymin", "xmax", "ymax")] for result in results]
    colors = [BOX_COLORS[index % len(BOX_COLORS)] for index in range(len(results))]
    return draw_boxes(image, boxes, colors)


def legend_html(results: Sequence[dict]) -> str:
    """One line per expression: a swatch of its box colour and the expression."""
    rows = (
        f'<div class="epmvg-legend-row"><span style="display:inline-block;width:1em;height:1em;'
        f'background:{color_hex(index)};margin-right:0.5em;vertical-align:middle"></span>'
        f"{html.escape(result['expression'])}</div>"
        for index, result in enumerate(results)
    )
    return f'<div id="epmvg-legend">{"".join(rows)}</div>'


def _page_error(message: str) -> gr.Error:
    # gr.Error renders HTML: escape, since messages quote user input; the traceback stays out of the server log too
    return gr.Error(html.escape(message), print_exception=False)


def make_handler(ground: Grounder) -> Callable:
    """
    The submit handler, over the raw page values (the image as Gradio's file payload, so that this handler reads the
    file itself and names it when it cannot). Bad input raises `gr.Error` with the grounder's message, shown in the
    page.
    """

    def handle(image: dict | None, text: str | None):
        if not image:
            raise _page_error("No image: upload or paste an image, or pick one of the examples.")
        path = image["path"]
        try:
            picture = open_image(path)
        except (OSError, PIL.Image.DecompressionBombError) as error:
            name = image.get("orig_name") or os.path.basename(path)
            raise _page_error(
                f"Could not read {name!r} as an image ({error}): upload a PNG, JPEG or WebP file."
            ) from error
        try:
            results = ground(path, parse_expressions(text))
        except INPUT_ERRORS as error:
            raise _page_error(str(error)) from error
        records = [
            {"expression": result["expression"], "box": result["box"], "score": result["score"], "color": color_hex(i)}
            for i, result in enumerate(results)
        ]
        return draw_results(picture, results), legend_html(results), records

    return handle


def build_interface(ground: Grounder, examples: Sequence[tuple[str, str]], model_name: str) -> gr.Blocks:
    """
    The app's page.

    Args:
        ground (`Grounder`):
            Finds the boxes, e.g. a "visual-grounding" pipeline.
        examples (`Sequence[tuple[str, str]]`):
            `(image path, expressions one per line)` pairs shown under the inputs.
        model_name (`str`):
            The model's folder or Hub id, shown in the title.

    Returns:
        `gr.Blocks`: serve it with [`launch`].
    """
    with gr.Blocks(title="EpmVG visual grounding", analytics_enabled=False) as demo:
        gr.Markdown(
            f"# EpmVG visual grounding\nModel: `{model_name}`. Give an image and one referring expression per line; "
            "each expression gets one box in its own colour."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    sources=["upload", "clipboard"], label="Image", height=DISPLAY_HEIGHT, elem_id="image"
                )
                text = gr.Textbox(
                    lines=3, label="Expressions (one per line)", placeholder="the red circle", elem_id="expressions"
                )
                submit = gr.Button("Ground", variant="primary", elem_id="submit")
            with gr.Column():
                drawn = gr.Image(
                    type="pil", label="Boxes", interactive=False, format="png", height=DISPLAY_HEIGHT, elem_id="drawn"
                )
                legend = gr.HTML(label="Legend")
                boxes = gr.JSON(label="Boxes in original pixels", open=True, elem_id="boxes")
        if examples:
            gr.Examples(examples=[list(example) for example in examples], inputs=[image, text])
        handler = make_handler(ground)
        submit.click(handler, [image, text], [drawn, legend, boxes], api_name="ground", preprocess=False)
    return demo


def launch(demo: gr.Blocks, port: int | None = None, host: str = "127.0.0.1") -> None:
    """Serve `demo` on `host:port` (a free port from 7860 on when None), without a share link."""
    demo.launch(server_name=host, server_port=port, share=False, show_error=True)


__all__ = ["BOX_COLORS", "build_interface", "draw_results", "launch", "legend_html", "open_image", "parse_expressions"]
