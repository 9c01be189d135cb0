# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""scripts/predict.py: JSON boxes and PNGs whose drawn box is the JSON box; the drawing helpers."""

import json

import numpy as np
import pytest
from PIL import Image

from modeling_epmvg.commands import predict
from processing.data.visualization import GROUND_TRUTH_COLOR, PREDICTION_COLOR, draw_grounding, make_grid

from .test_hub_loading import save_model_and_processor


def gradient_image(height: int, width: int) -> Image.Image:
    """An image without the box colours: red and green stay below 100."""
    y, x = np.mgrid[:height, :width]
    pixels = np.stack([x * 90 // width, y * 90 // height, np.full_like(x, 180)], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels)


def coloured_extent(image: Image.Image, color) -> list[int]:
    """[xmin, ymin, xmax, ymax] of the pixels of exactly `color`."""
    ys, xs = np.nonzero((np.asarray(image.convert("RGB")) == color).all(axis=-1))
    assert len(xs), f"no pixel of colour {color}"
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoint")
    save_model_and_processor(folder)
    return folder


def test_predict_writes_json_and_pngs_whose_box_matches(checkpoint, tmp_path, capsys):
    images = {"wide.png": (90, 150), "tall.jpg": (120, 70)}
    for name, size in images.items():
        gradient_image(*size).save(tmp_path / name, quality=95)
    output_json, output_dir = tmp_path / "out" / "boxes.json", tmp_path / "pngs"
    argv = [str(checkpoint), "--image", str(tmp_path / "wide.png"), str(tmp_path / "tall.jpg")]
    argv += ["--expression", "the red circle", "the dog", "--output-json", str(output_json)]
    argv += ["--output-dir", str(output_dir), "--batch-size", "2", "--device", "cpu"]
    assert predict.main(argv) == 0

    printed = json.loads(capsys.readouterr().out)
    records = json.loads(output_json.read_text())
    assert printed == records and len(records) == 2
    for record, (name, (height, width)), expression in zip(records, images.items(), ["the red circle", "the dog"]):
        assert record["image"].endswith(name) and record["expression"] == expression
        assert record["image_size"] == [height, width] and record["score"] == 1.0
        box = [record["box"][key] for key in ("xmin", "ymin", "xmax", "ymax")]
        assert 0 <= box[0] <= box[2] <= width and 0 <= box[1] <= box[3] <= height
        png = Image.open(record["visualization"])
        assert png.format == "PNG" and png.width == width and png.height > height  # caption band below
        drawn = coloured_extent(png.crop((0, 0, width, height)), PREDICTION_COLOR)
        expected = [min(round(value), limit - 1) for value, limit in zip(box, [width, height, width, height])]
        assert np.abs(np.array(drawn) - expected).max() <= 1, (drawn, box)


def test_predict_pairs_one_image_with_several_expressions(checkpoint, tmp_path, capsys):
    gradient_image(50, 60).save(tmp_path / "scene.png")
    argv = [str(checkpoint), "--image", str(tmp_path / "scene.png"), "--expression", "the dog", "a star"]
    assert predict.main(argv + ["--no-draw", "--device", "cpu"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [record["expression"] for record in records] == ["the dog", "a star"]
    assert all("visualization" not in record for record in records)


def test_predict_reports_bad_input_without_a_traceback(checkpoint, tmp_path, capsys):
    assert predict.main([str(checkpoint), "--image", str(tmp_path / "nope.png"), "--expression", "x"]) == 1
    assert "Image file not found" in capsys.readouterr().err
    gradient_image(10, 10).save(tmp_path / "a.png")
    argv = [
        str(checkpoint),
        "--image",
        str(tmp_path / "a.png"),
        str(tmp_path / "a.png"),
        "--expression",
        "a",
        "b",
        "c",
    ]
    assert predict.main(argv) == 1
    assert "2 images and 3 expressions" in capsys.readouterr().err
    model_only = tmp_path / "model_only"
    save_model_and_processor(tmp_path / "full")[0].save_pretrained(model_only)
    assert predict.main([str(model_only), "--image", str(tmp_path / "a.png"), "--expression", "a"]) == 1
    assert "--processor" in capsys.readouterr().err
    assert (
        predict.main([str(tmp_path / "no_such_model"), "--image", str(tmp_path / "a.png"), "--expression", "a"]) == 1
    )
    assert "no_such_model" in capsys.readouterr().err


def test_draw_grounding_colours_caption_and_grid():
    image = gradient_image(40, 60)
    panel = draw_grounding(
        image, prediction={"xmin": 5.2, "ymin": 4, "xmax": 30, "ymax": 35}, ground_truth=[10, 8, 50, 30], caption="x"
    )
    assert panel.width == 60 and panel.height > 40
    assert coloured_extent(panel, PREDICTION_COLOR) == [5, 4, 30, 35]
    assert coloured_extent(panel, GROUND_TRUTH_COLOR)[2:] == [50, 30]
    enlarged = draw_grounding(image, prediction=[5, 4, 30, 35], scale=2.0)
    assert enlarged.size == (120, 80) and coloured_extent(enlarged, PREDICTION_COLOR) == [10, 8, 60, 70]
    grid = make_grid([panel, enlarged, panel], columns=2, padding=4)
    assert grid.size == (2 * 120 + 3 * 4, 2 * max(panel.height, 80) + 3 * 4)
    with pytest.raises(ValueError, match="4 finite numbers"):
        draw_grounding(image, prediction=[1, 2, 3])
