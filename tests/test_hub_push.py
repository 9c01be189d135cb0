# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""`epmvg-train --push_to_hub` uploads the project's model card with Hub-valid metadata (the upload is mocked)."""

import json
import os
from types import SimpleNamespace

import pytest
import transformers.trainer
from huggingface_hub import ModelCard

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.commands.train import main
from modeling_epmvg.model_card_epmvg import write_model_card

from .conftest import tiny_config
from .training_fixtures import train_arguments, write_training_setup


class FakeHubApi:
    """Records what `upload_folder` would upload instead of reaching the Hub."""

    def __init__(self):
        self.uploads = []

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, repo_id, folder_path, **kwargs):
        paths = {name: os.path.join(folder_path, name) for name in os.listdir(folder_path)}
        files = {name: open(path, "rb").read() for name, path in paths.items() if os.path.isfile(path)}
        self.uploads.append({"repo_id": repo_id, "files": files})


@pytest.fixture
def hub(monkeypatch):
    api = FakeHubApi()
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: api)
    return api


def test_the_pushed_card_is_the_projects_with_hub_valid_metadata(hub, tmp_path):
    setup = write_training_setup(tmp_path / "setup")
    arguments = train_arguments(setup, tmp_path / "model", eval_strategy="steps", eval_steps="2", max_steps="2")
    main([*arguments, "--push_to_hub", "--hub_model_id", "someone/epmvg-tiny"])

    assert hub.uploads and {upload["repo_id"] for upload in hub.uploads} == {"someone/epmvg-tiny"}
    files = hub.uploads[-1]["files"]
    assert {"config.json", "model.safetensors", "processor_config.json", "pipeline_epmvg.py"} <= set(files)
    readme = files["README.md"].decode()
    card = ModelCard(readme)
    assert "epmvg" in card.data.tags and card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "other"  # the Hub has no visual-grounding task; not a detector
    assert card.data.model_name == "someone/epmvg-tiny"
    assert card.data.datasets is None  # a local dataset is no Hub dataset id
    assert card.data.eval_results and card.data.eval_results[0].metric_name == "Acc@0.5"
    assert str(tmp_path) not in readme, "the card shows a path of this machine"
    assert "custom_pipelines" in json.loads(files["config.json"])


def test_the_card_names_hub_datasets_by_id_and_the_model_after_its_data(tmp_path):
    model = EpmVGForVisualGrounding(tiny_config())
    card = ModelCard.load(write_model_card(str(tmp_path / "model"), model, "jxu124/refcoco", {"val": 0.5}))
    assert card.data.datasets == ["jxu124/refcoco"] and card.data.model_name == "epmvg-refcoco"
    assert card.data.eval_results[0].dataset_type == "jxu124/refcoco"
