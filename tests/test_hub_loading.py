# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Hub-native loading: a saved folder loads through the Auto classes, with and without the package installed."""

import json
import os
import textwrap

import numpy as np
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor

from modeling_epmvg import EpmVGForVisualGrounding
from processing import EpmVGProcessor

from .conftest import frozen_parameter_names, tiny_config, tiny_tokenizer
from .remote_code import run_without_package


EXPRESSIONS = ["the red circle", "the small square left of the star"]


def sample_images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)), Image.new("RGB", (30, 60), "red")]


def save_model_and_processor(folder) -> tuple[EpmVGForVisualGrounding, EpmVGProcessor]:
    config = tiny_config()
    model = EpmVGForVisualGrounding(config).eval()
    processor = EpmVGProcessor.from_model_config(config, tiny_tokenizer())
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor


def predict(model, processor) -> list[list[float]]:
    images = sample_images()
    inputs = processor(images=images, text=EXPRESSIONS, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    results = processor.post_process_visual_grounding(outputs, target_sizes=[im.size[::-1] for im in images])
    return [result["boxes"][0].tolist() for result in results]


# Runs in a fresh interpreter where the repository's packages cannot be imported at all.
REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    for name in ("modeling_epmvg", "processing", "scripts"):
        sys.modules[name] = None  # any import of them now fails
    import numpy as np, torch
    from PIL import Image
    from transformers import AutoModel, AutoProcessor

    folder = sys.argv[1]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)), Image.new("RGB", (30, 60), "red")]
    inputs = processor(images=images, text=json.loads(sys.argv[2]), return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    results = processor.post_process_visual_grounding(outputs, target_sizes=[im.size[::-1] for im in images])
    print(json.dumps({
        "model_module": type(model).__module__,
        "processor_module": type(processor).__module__,
        "boxes": [result["boxes"][0].tolist() for result in results],
    }))
    """
)


def test_saved_folder_loads_with_trust_remote_code_where_the_package_is_not_importable(tmp_path):
    model, processor = save_model_and_processor(tmp_path / "checkpoint")
    files = set(os.listdir(tmp_path / "checkpoint"))
    assert {"configuration_epmvg.py", "modeling_epmvg.py", "loss_epmvg.py"} <= files
    assert {"image_processing_epmvg.py", "processing_epmvg.py", "pipeline_epmvg.py"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)

    remote = run_without_package(
        REMOTE_CODE_SCRIPT, str(tmp_path / "checkpoint"), json.dumps(EXPRESSIONS), cwd=tmp_path
    )
    assert remote["model_module"].startswith("transformers_modules.")
    assert remote["processor_module"].startswith("transformers_modules.")
    np.testing.assert_allclose(remote["boxes"], predict(model, processor), atol=1e-5)


def test_saved_folder_loads_through_auto_classes_without_trust_remote_code_when_installed(tmp_path):
    model, processor = save_model_and_processor(tmp_path)
    reloaded_model = AutoModel.from_pretrained(tmp_path).eval()
    reloaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded_model) is EpmVGForVisualGrounding
    assert type(reloaded_processor) is EpmVGProcessor
    assert reloaded_processor.max_text_len == processor.max_text_len
    np.testing.assert_allclose(predict(reloaded_model, reloaded_processor), predict(model, processor), atol=0)


FROZEN_PARAMETERS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    for name in ("modeling_epmvg", "processing", "scripts"):
        sys.modules[name] = None
    from transformers import AutoModel

    model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
    print(json.dumps(sorted(name for name, parameter in model.named_parameters() if not parameter.requires_grad)))
    """
)


def test_the_frozen_backbone_stages_are_frozen_again_after_loading_with_and_without_the_package(tmp_path):
    model = EpmVGForVisualGrounding(tiny_config(freeze_backbone_stages=1))
    frozen = frozen_parameter_names(model)
    assert frozen and all(".embedder." in name or ".stages.0." in name for name in frozen)  # the stem and layer1
    model.save_pretrained(tmp_path / "checkpoint")

    assert frozen_parameter_names(AutoModel.from_pretrained(tmp_path / "checkpoint")) == frozen
    assert frozen_parameter_names(EpmVGForVisualGrounding.from_pretrained(tmp_path / "checkpoint")) == frozen
    remote = run_without_package(FROZEN_PARAMETERS_SCRIPT, str(tmp_path / "checkpoint"), cwd=tmp_path)
    assert set(remote) == frozen
