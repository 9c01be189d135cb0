# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Every command of README.md and docs/*.md runs as written (issue 23 item 2). Each ```bash line is run as a subprocess
in a fresh folder, with the package installed as users install it (`python` and the `epmvg-*` console scripts come
from the non-editable venv of tests/installed_package.py; `accelerate` from the test environment), and with two
changes only:

- Hub ids become local folders in the same layout as that Hub repo (`HUB_STAND_INS`: DETR in the timm layout of its
  main revision and the `no_timm` one, Swin, a tiny BERT with its tokenizer, a tiny CLIP with its processor, the
  jxu124 and lmms-lab parquet repos), and the user's own files the documentation names are written first in the
  layout it describes (`LOCAL_INPUTS`: a COCO image folder, a REFER folder, TransVG split files, ...);
- step counts and batch sizes become tiny (`PROGRAMS[...].tiny`), and `accelerate launch` starts 2 CPU processes.

A command whose program has no entry in `PROGRAMS` fails, naming it; so does one that reads an input the tables do
not provide (the run is offline). The DETR stand-in has ResNet-50's real shapes and the README's 640 canvas.
`make` lines are the CI itself (their target is checked, not run); `pip install` lines are run by
tests/test_installed_package.py.
"""

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, CLIPImageProcessorPil, CLIPProcessor

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.efficiency_epmvg import ALLOCATOR_SETTINGS
from processing import EpmVGProcessor

from .conftest import REPO_ROOT, TINY_VOCAB, free_port, tiny_clip, tiny_config, tiny_tokenizer
from .documented_commands import DocumentedCommand, all_documented_commands, documented_commands
from .grounding_layouts import (
    JXU124_IMAGES,
    REFER_IMAGES,
    write_coco_images,
    write_flickr30k_entities,
    write_image,
    write_jxu124_repo,
    write_lmms_repo,
    write_refer_folder,
    write_transvg_unc,
)


pytestmark = pytest.mark.slow

DROP, BARE = None, ""  # `tiny` values: the flag is removed; the flag is given (without a value)


# --------------------------------------------------------------------------------------------- the stand-ins


def write_bert(folder: Path) -> None:
    """google-bert/bert-base-uncased's layout (BertModel weights, config, WordPiece tokenizer), tiny."""
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)


def write_clip(folder: Path) -> None:
    """openai/clip-vit-base-patch16's layout (CLIPModel and its CLIPProcessor), tiny."""
    tiny_clip().save_pretrained(folder)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tiny_tokenizer()).save_pretrained(folder)


def write_detr(layout: str) -> Callable[[Path], None]:
    """facebook/detr-resnet-50's layout (ResNet-50 and DETR shapes), with weights scaled as trained ones are."""

    def write(folder: Path) -> None:
        from .hub_layouts import save_weights, write_detr_checkpoint

        tensors = write_detr_checkpoint(folder, layout=layout)
        # N(0, 1) weights through 50 layers overflow to a NaN loss: 1 / sqrt(fan-in) keeps the features finite
        for tensor in tensors.values():
            if tensor.dim() >= 2:
                tensor /= tensor[0].numel() ** 0.5
        save_weights(folder, tensors, "safetensors")

    return write


def write_swin(folder: Path) -> None:
    from .hub_layouts import write_swin_checkpoint

    write_swin_checkpoint(folder)


def write_grounding_model(folder: Path) -> None:
    """A trained EpmVG folder (model and processor), tiny."""
    torch.manual_seed(0)
    config = tiny_config()
    EpmVGForVisualGrounding(config).save_pretrained(folder)
    EpmVGProcessor.from_model_config(config, tiny_tokenizer()).save_pretrained(folder)


# (Hub id, revision) -> writes a local folder in that repo's layout; revision None is the main one
HUB_STAND_INS: dict[tuple[str, str | None], Callable[[Path], None]] = {
    ("facebook/detr-resnet-50", None): write_detr("timm"),
    ("facebook/detr-resnet-50", "no_timm"): write_detr("no_timm"),
    ("microsoft/swin-small-patch4-window7-224", None): write_swin,
    ("google-bert/bert-base-uncased", None): write_bert,
    ("openai/clip-vit-base-patch16", None): write_clip,
    ("jxu124/refcoco", None): write_jxu124_repo,
    ("jxu124/refcocoplus", None): write_jxu124_repo,
    ("jxu124/refcocog", None): write_jxu124_repo,
    ("lmms-lab/RefCOCO", None): write_lmms_repo,
    ("user/epmvg-refcoco", None): write_grounding_model,  # the user's own model, pushed to the Hub
}


def write_transvg_checkpoint(path: Path) -> None:
    """A released TransVG .pth ({"model", "args"}) with the official key names, tiny."""
    from .test_convert_transvg import TRANSVG_ARGS, make_transvg_state_dict

    torch.save({"model": make_transvg_state_dict(), "args": TRANSVG_ARGS, "epoch": 89}, path)


def write_detr_pth(path: Path) -> None:
    """DETR's original detr-r50.pth ({"model": state_dict}), tiny."""
    from .test_convert_transvg import make_detr_state_dict

    torch.save({"model": make_detr_state_dict()}, path)


def write_student_config(folder: Path) -> None:
    """The demo's student config (demo_output/config), tiny: a stride-8 ResNet on a 32x32 canvas."""
    tiny_config(image_size=32, backbone_stride=8, freeze_backbone_stages=0, backbone_config={
        "model_type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1],
        "layer_type": "basic", "out_features": ["stage2"]}).save_pretrained(folder)  # fmt: skip


def write_synthetic(folder: Path) -> None:
    """A saved synthetic benchmark (what epmvg-synthetic-data writes), 32x32 scenes."""
    from processing.data.synthetic import SyntheticGroundingConfig, generate_synthetic_dataset, save_synthetic_dataset

    config = SyntheticGroundingConfig(image_size=32, max_objects=4)
    save_synthetic_dataset(generate_synthetic_dataset(8, 4, 4, config=config), str(folder), config)


def write_captions(folder: Path) -> None:
    """A saved caption DatasetDict (what epmvg-synthetic-data --captions_output writes)."""
    from processing.data.synthetic import SyntheticGroundingConfig, generate_caption_dataset, save_synthetic_dataset

    config = SyntheticGroundingConfig(image_size=32)
    save_synthetic_dataset(generate_caption_dataset(8, 4, config=config, seed=0), str(folder), config)


def write_scene(path: Path) -> None:
    write_image(path, 48, 40)


# the user's own files the documentation names (relative to where the command runs) -> writes them there
LOCAL_INPUTS: dict[str, Callable[[Path], None]] = {
    "data/coco/train2014": lambda folder: write_coco_images(folder, JXU124_IMAGES | REFER_IMAGES),
    "data/refer/refcoco": lambda folder: write_refer_folder(folder, with_val=True),
    # TransVG's split files, their images under TransVG's data root (ln_data/other/images/mscoco/...)
    "data/unc": lambda folder: write_transvg_unc(folder, data_root=folder.parent.parent / "ln_data"),
    "data/flickr30k_entities": lambda folder: write_flickr30k_entities(
        folder, folder.parent / "flickr30k_images", splits=("train", "val", "test")
    ),
    "data/synthetic": write_synthetic,
    "data/captions": write_captions,
    "demo_output/config": write_student_config,
    "demo_output/model": write_grounding_model,
    "out/epmvg-refcoco": write_grounding_model,
    "transvg_r50_refcoco.pth": write_transvg_checkpoint,
    "detr-r50.pth": write_detr_pth,
    "scene.png": write_scene,
}


@dataclass(frozen=True)
class Program:
    """How the documented commands of one program run here: flags set for a tiny run, and what they must write."""

    tiny: dict[str, str | None] = field(default_factory=dict)
    # (flag or positional index, file under it) that must exist after a successful run
    outputs: tuple[tuple[str | int, str], ...] = ()
    # the command's default of an output flag the documented command may leave out
    defaults: dict[str, str] = field(default_factory=dict)
    # a server: it succeeds when it answers on its port (then it is stopped)
    serves: bool = False


TRAIN = Program(
    tiny={"--max_steps": "1", "--per_device_train_batch_size": "1", "--per_device_eval_batch_size": "1",
          "--dataloader_num_workers": "0"},  # fmt: skip
    outputs=(("--output_dir", "model.safetensors"), ("--output_dir", "README.md")),
)
PROGRAMS: dict[str, Program] = {
    "train": TRAIN,
    "evaluate": Program(
        tiny={"--batch_size": "2"}, outputs=(("--output", ""),), defaults={"--output": "eval_results.json"}
    ),
    "predict": Program(outputs=(("--output_dir", ""),), defaults={"--output_dir": "predictions"}),
    "convert_transvg": Program(outputs=((1, "config.json"),)),
    "export_onnx": Program(outputs=((1, "model.onnx"),)),
    "app": Program(tiny={"--examples": "1"}, serves=True),
    "synthetic_data": Program(
        tiny={"--num_train": "8", "--num_val": "4", "--num_test": "4", "--num_caption_train": "8",
              "--num_caption_val": "4"},  # fmt: skip
        outputs=(("--output", "dataset_dict.json"),),
    ),
    "pretrain_teacher": Program(
        tiny={"--max_steps": "1", "--batch_size": "4", "--num_train": "8", "--num_val": "4"},
        outputs=(("--output_dir", "model.safetensors"),),
    ),
    "pretrain_visual": Program(
        tiny={"--max_steps": "1", "--batch_size": "2"}, outputs=(("--output_dir", "model.safetensors"),)
    ),
    # one 64-pixel forward case instead of the benchmark's case list
    "benchmark": Program(
        tiny={"--quick": DROP, "--cases": "forward-b1-64", "--rounds": "1", "--repeats": "1", "--warmup": "0",
              "--no-flops": BARE, "--output-json": DROP, "--markdown": DROP},  # fmt: skip
    ),
}
# scripts/<name>.py -> the command's name where they differ
LAUNCHER_NAMES = {"run_evaluation": "evaluate"}
ACCELERATE_TINY = {"--num_processes": "2"}


# ------------------------------------------------------------------------------------------- reading a command


def spelling(flag: str) -> str:
    return flag.replace("-", "_")


def flag_index(words: list[str], flag: str) -> int | None:
    return next((i for i, word in enumerate(words) if spelling(word) == spelling(flag)), None)


def flag_value(words: list[str], flag: str) -> str | None:
    index = flag_index(words, flag)
    return None if index is None or index + 1 >= len(words) else words[index + 1]


def with_flags(words: list[str], flags: dict[str, str | None]) -> list[str]:
    """`words` with each flag set to its value (replaced where present, else appended), or removed (DROP)."""
    words = list(words)
    for flag, value in flags.items():
        index = flag_index(words, flag)
        takes_value = index is not None and index + 1 < len(words) and not words[index + 1].startswith("--")
        if value is DROP:
            if index is not None:
                del words[index : index + (2 if takes_value else 1)]
        elif index is None:
            words += [flag, value] if value != BARE else [flag]
        elif value != BARE:
            words[index + 1] = value
    return words


@dataclass
class Invocation:
    """A documented command taken apart: launcher (python, accelerate launch ...), program and arguments."""

    launcher: list[str]
    program: str
    arguments: list[str]

    @property
    def positional(self) -> list[str]:
        """The arguments before the first flag."""
        return [word for word in self.arguments[: next(
            (i for i, word in enumerate(self.arguments) if word.startswith("--")), len(self.arguments))]]  # fmt: skip


def invocation(words: tuple[str, ...]) -> Invocation:
    words = list(words)
    if words[0].startswith("epmvg-"):
        return Invocation(words[:1], words[0].removeprefix("epmvg-").replace("-", "_"), words[1:])
    script = next((i for i, word in enumerate(words) if word.startswith("scripts/") and word.endswith(".py")), None)
    if words[0] in ("python", "accelerate") and script is not None:
        name = Path(words[script]).stem
        return Invocation(words[: script + 1], LAUNCHER_NAMES.get(name, name), words[script + 1 :])
    return Invocation([], words[0], words[1:])


# ------------------------------------------------------------------------------------------- running a command


class HubStandIns:
    """The Hub stand-ins, each written once per session on first use."""

    def __init__(self, root: Path):
        self.root, self.folders = root, {}

    def folder(self, repo_id: str, revision: str | None = None) -> Path | None:
        key = (repo_id, revision)
        if key not in HUB_STAND_INS:
            return None
        if key not in self.folders:
            folder = self.root / (repo_id.replace("/", "--") + (f"@{revision}" if revision else ""))
            HUB_STAND_INS[key](folder)
            self.folders[key] = folder
        return self.folders[key]


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> HubStandIns:
    return HubStandIns(tmp_path_factory.mktemp("hub"))


def prepare(call: Invocation, hub: HubStandIns, workdir: Path) -> list[str]:
    """Writes the local inputs the command names into `workdir`; returns its arguments with Hub ids replaced."""
    backbone_revision = flag_value(call.arguments, "--backbone_revision")
    arguments = list(call.arguments)
    for index, word in enumerate(arguments):
        if word in LOCAL_INPUTS and not (workdir / word).exists():
            LOCAL_INPUTS[word](workdir / word)
        previous = spelling(arguments[index - 1]) if index else ""
        revision = backbone_revision if previous == "--backbone_model_name_or_path" else None
        stand_in = hub.folder(word, revision)
        if stand_in is not None:
            arguments[index] = str(stand_in)
    return arguments


def command_line(
    command: DocumentedCommand, hub: HubStandIns, workdir: Path, venv: Path
) -> tuple[list[str], dict[str, str]]:
    """The words to run (from the installed `venv` first) and the environment to run them in."""
    call = invocation(command.words)
    environment = os.environ | command.environment | {
        "PATH": os.pathsep.join([str(venv / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HF_HOME": str(workdir / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }  # fmt: skip
    launcher = call.launcher
    if launcher[:2] == ["accelerate", "launch"]:
        # on a free port: other tests may run a launch at the same time
        launcher = [*launcher[:2], "--main_process_port", str(free_port()), *with_flags(launcher, ACCELERATE_TINY)[2:]]
        environment["CUDA_VISIBLE_DEVICES"] = ""  # CPU processes (gloo), as tests/test_evaluate_script.py runs them
        environment["OMP_NUM_THREADS"] = "1"
    arguments = with_flags(prepare(call, hub, workdir), PROGRAMS[call.program].tiny)
    return [*launcher, *arguments], environment


def serve(words: list[str], workdir: Path, environment: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Starts a server on a free port; 0 once it answers there (it is then stopped), else its exit status."""
    port = free_port()
    process = subprocess.Popen([*with_flags(words, {"--port": str(port)})], cwd=workdir, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                return 0, ""
            except OSError:
                time.sleep(1)
        return process.poll() if process.poll() is not None else -1, "no answer on the port"
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0]
        if process.returncode not in (0, -15):
            print(output[-6000:])


def check_outputs(call: Invocation, workdir: Path) -> None:
    program = PROGRAMS[call.program]
    for where, name in program.outputs:
        if isinstance(where, int):
            folder = call.positional[where]
        else:
            folder = flag_value(call.arguments, where) or program.defaults.get(where)
        assert folder is not None, f"the command names no {where}"
        assert (workdir / folder / name).exists(), f"{folder}/{name} was not written"


def check_export(command: DocumentedCommand) -> None:
    """Exported variables are the opt-in allocator settings of efficiency_epmvg, with their values."""
    settings = {name: value for setting in ALLOCATOR_SETTINGS.values() for name, value in setting.items()}
    for assignment in command.words[1:]:
        name, _, value = assignment.partition("=")
        assert settings.get(name) == value, f"{command.source}: {assignment} is not one of ALLOCATOR_SETTINGS"


def check_make(command: DocumentedCommand) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target in command.words[1:]:
        assert f"\n{target}:" in makefile, f"{command.source}: Makefile has no target {target!r}"


def check_pip(command: DocumentedCommand) -> None:
    """tests/test_installed_package.py runs README.md's pip lines; pages elsewhere install the same checkout."""
    from .installed_package import readme_installs

    assert command.words in readme_installs() and command.words[2].startswith("."), command.source


CHECKED_NOT_RUN = {"export": check_export, "make": check_make, "pip": check_pip}
COMMANDS = all_documented_commands()


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.source} {invocation(c.words).program}" for c in COMMANDS])
def test_documented_command_runs(command, hub, tmp_path, installed_venv):
    if command.words[0] in CHECKED_NOT_RUN:
        CHECKED_NOT_RUN[command.words[0]](command)
        return
    call = invocation(command.words)
    if call.program not in PROGRAMS:
        pytest.fail(f"{command.source}: no stand-in for {call.program!r} in PROGRAMS: {command.text}")
    words, environment = command_line(command, hub, tmp_path, installed_venv)
    (tmp_path / "scripts").symlink_to(REPO_ROOT / "scripts")  # the commands run from a clone's root
    if PROGRAMS[call.program].serves and flag_index(words, "--write_space") is None:
        status, output = serve(words, tmp_path, environment)
    else:
        completed = subprocess.run(words, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
        status, output = completed.returncode, completed.stdout[-3000:] + "\n" + completed.stderr[-6000:]
    assert status == 0, f"{command.source}: {command.text}\nran as: {' '.join(words)}\n{output}"
    check_outputs(call, tmp_path)


def test_the_documentation_shows_every_program_and_every_training_layout():
    calls = [invocation(command.words) for command in COMMANDS if command.words[0] not in CHECKED_NOT_RUN]
    assert {call.program for call in calls} >= set(PROGRAMS)
    datasets = {flag_value(call.arguments, "--dataset_name") for call in calls if call.program == "train"}
    layouts = {"jxu124/refcoco", "data/refer/refcoco", "data/unc", "data/flickr30k_entities"}
    assert datasets >= layouts
    assert any(call.launcher[:2] == ["accelerate", "launch"] for call in calls if call.program == "train")
    assert any(call.launcher[:2] == ["accelerate", "launch"] for call in calls if call.program == "evaluate")


def test_every_stand_in_is_used_by_a_documented_command():
    words = {word for command in COMMANDS for word in command.words}
    assert {repo_id for repo_id, _ in HUB_STAND_INS} <= words
    assert set(LOCAL_INPUTS) <= words
    no_timm = [c for c in COMMANDS if flag_value(list(c.words), "--backbone_revision") == "no_timm"]
    assert no_timm, "no documented command uses DETR's no_timm revision"


def test_reading_the_blocks_joins_continuations_and_drops_comments(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text `epmvg-train --not-a-command`\n```bash\n# a comment\nA= B=1 epmvg-train --x 1 \\\n  --y '{\"a\": 2}'"
        "  # why\n\nmake demo   # creates .venv\n```\n```python\nprint()\n```\n"
    )
    commands = documented_commands(page, root=tmp_path)
    assert [(c.source, c.words, c.environment) for c in commands] == [
        ("page.md:4", ("epmvg-train", "--x", "1", "--y", '{"a": 2}'), {"A": "", "B": "1"}),
        ("page.md:7", ("make", "demo"), {}),
    ]
    assert with_flags(["--x", "1", "--quick", "--y", "2"], {"--x": "3", "--quick": DROP, "--z": "4", "--b": BARE}) == [
        "--x", "3", "--y", "2", "--z", "4", "--b"]  # fmt: skip
