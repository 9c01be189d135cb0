# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The grounding app (`epmvg-app`) and its Hugging Face Space, driven in a headless browser (Debian's chromium)."""

import io
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


gradio = pytest.importorskip("gradio", reason="the app needs the `app` extra (gradio)")
playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (requirements-dev)")

import processing  # noqa: E402, F401  (registers the "visual-grounding" pipeline task)
from modeling_epmvg.commands.app import default_model, main  # noqa: E402
from modeling_epmvg.commands.checkpoints import load_grounding_pipeline  # noqa: E402
from processing.app.examples import write_synthetic_examples  # noqa: E402
from processing.app.interface import make_handler, parse_expressions  # noqa: E402

from .conftest import REPO_ROOT, free_port  # noqa: E402
from .test_hub_loading import save_model_and_processor  # noqa: E402


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # the page must render from the local server alone: every other host fails to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]  # fmt: skip
EXPRESSIONS = ["the red circle", "the small square left of the star"]
TIMEOUT_MS = 60_000
# set to a path (e.g. docs/app.png) to keep the screenshot of the app for the README
SCREENSHOT_ENV = "EPMVG_APP_SCREENSHOT"
# set to a model folder (e.g. demo_output/model) to run the app tests on it instead of the tiny random model
MODEL_ENV = "EPMVG_APP_MODEL"
# the Space's interpreter: the repository's packages cannot be imported (`processing` is the Space's own copy of three
# files), only gradio, torch and transformers are used
SPACE_LAUNCHER = textwrap.dedent(
    """
    import os, runpy, sys
    for name in ("modeling_epmvg", "scripts"):
        sys.modules[name] = None  # any import of them now fails
    import processing
    assert processing.__file__.startswith(os.getcwd()), processing.__file__
    runpy.run_path("app.py", run_name="__main__")
    """
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The tiny random model, or the folder that MODEL_ENV names."""
    if os.environ.get(MODEL_ENV):
        return Path(os.environ[MODEL_ENV]).resolve()
    folder = tmp_path_factory.mktemp("app") / "model"
    save_model_and_processor(folder)
    return folder


@pytest.fixture(scope="module")
def grounder(model_dir):
    return load_grounding_pipeline(str(model_dir))


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, list[str]]:
    """The app's first example: a synthetic-benchmark scene and its two expressions."""
    path, text = write_synthetic_examples(tmp_path_factory.mktemp("examples"), num_images=1)[0]
    assert len(text.splitlines()) == 2
    return Path(path), text.splitlines()


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """A 96x64 picture (not square, so that swapped width and height would show) with a blue square, a red disc."""
    pixels = np.full((64, 96, 3), 120, dtype=np.uint8)
    pixels[10:30, 10:30] = (40, 60, 220)
    yy, xx = np.mgrid[:64, :96]
    pixels[(yy - 40) ** 2 + (xx - 70) ** 2 < 144] = (220, 40, 40)
    path = tmp_path_factory.mktemp("images") / "scene.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def browser():
    if not os.path.isfile(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium), or install it so.")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def serve(command: list[str], port: int, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Starts a server process and waits until it answers on 127.0.0.1:`port` (its output goes to cwd/server.log)."""
    log = open(cwd / "server.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The server exited with {process.returncode}:\n{(cwd / 'server.log').read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    pytest.fail(f"The server did not answer within 180 s:\n{(cwd / 'server.log').read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def open_page(browser, port: int):
    """A fresh page of the app, with a list that collects every request it makes to another host."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.outside_requests = []
    local = (f"http://127.0.0.1:{port}/", "data:", "blob:")
    page.on(
        "request", lambda request: None if request.url.startswith(local) else page.outside_requests.append(request.url)
    )
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector("#submit")
    return page


def upload(page, image: Path) -> None:
    """Uploads `image` and waits until the page shows it (by file name: each test image has its own)."""
    page.locator("#image input[type=file]").set_input_files(str(image))
    page.wait_for_function(
        "name => [...document.querySelectorAll('#image img')].some(img => img.src.includes(name))", arg=image.name
    )


def ground_in_page(page, text: str) -> list[dict]:
    """Types `text`, submits, and returns the records of the JSON panel once they are those of `text`'s lines."""
    page.locator("#expressions textarea").fill(text)
    page.locator("#submit").click()
    wanted = [line for line in text.splitlines() if line.strip()]
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        panel = page.locator("#boxes .json-holder")
        if panel.count():
            records = json.loads(panel.inner_text() or "null") or []
            if [record["expression"] for record in records] == wanted:
                return records
        time.sleep(0.2)
    pytest.fail(f"The page showed no boxes for {wanted}.")


def page_error(page, fragment: str) -> str:
    """The text of the error message in the page that contains `fragment`."""
    toast = page.locator(".toast-body", has_text=fragment)
    toast.first.wait_for()
    return toast.first.inner_text()


def assert_pipeline_boxes(records: list[dict], grounder, image: Path, expressions: list[str]) -> None:
    """The page's records are the pipeline's boxes (original pixels) for the same image and expressions."""
    assert [record["expression"] for record in records] == expressions
    for record, result in zip(records, grounder(str(image), expressions)):
        np.testing.assert_allclose(
            [record["box"][key] for key in result["box"]], list(result["box"].values()), atol=1e-4
        )
        assert record["score"] == result["score"]


def test_app_in_a_browser_shows_the_pipelines_boxes_and_errors_and_keeps_serving(
    browser, model_dir, grounder, example, scene, tmp_path
):
    port = free_port()
    server = serve(
        [sys.executable, str(REPO_ROOT / "scripts" / "app.py"), "--model", str(model_dir), "--port", str(port)],
        port,
        cwd=tmp_path,
    )
    try:
        page = open_page(browser, port)
        image, expressions = example
        page.get_by_text(expressions[0]).first.wait_for()  # the examples are listed
        upload(page, image)
        records = ground_in_page(page, "\n".join(expressions))
        assert_pipeline_boxes(records, grounder, image, expressions)
        assert page.locator("#epmvg-legend").inner_text().splitlines() == expressions
        assert len({record["color"] for record in records}) == 2
        screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "app.png")
        page.screenshot(path=str(screenshot), full_page=True)
        assert Image.open(screenshot).width == 1280

        page.locator("#expressions textarea").fill("   ")
        page.locator("#submit").click()
        assert "Expression 0 is empty" in page_error(page, "is empty")
        upload(page, scene)
        assert_pipeline_boxes(ground_in_page(page, "\n".join(EXPRESSIONS)), grounder, scene, EXPRESSIONS)

        page.reload()
        page.locator("#submit").click()
        assert "No image: upload or paste an image" in page_error(page, "No image")
        assert server.poll() is None
        assert page.outside_requests == []
    finally:
        stop(server)


def test_an_unreadable_image_is_named_in_the_error(grounder, tmp_path):
    image = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(image, format="PNG")
    (tmp_path / "truncated.png").write_bytes(image.getvalue()[:60])
    handle = make_handler(grounder)
    with pytest.raises(gradio.Error, match="Could not read &#x27;photo.png&#x27; as an image"):
        handle({"path": str(tmp_path / "truncated.png"), "orig_name": "photo.png"}, "the star")
    with pytest.raises(gradio.Error, match="No image"):
        handle(None, "the star")


def test_written_space_runs_without_the_repository_and_gives_the_same_boxes(
    browser, model_dir, grounder, scene, tmp_path
):
    space = tmp_path / "space"
    assert main(["--model", str(model_dir), "--write-space", str(space), "--examples", "2"]) == 0
    copied = [
        "processing/app/interface.py",
        "processing/data/visualization.py",
        "processing/image_processing_epmvg.py",
    ]
    assert {"app.py", "requirements.txt", "README.md", "space_settings.json"} <= {
        path.name for path in space.iterdir()
    }
    for path in copied:  # as they are in the repository
        assert (space / path).read_text() == (REPO_ROOT / path).read_text()
    assert {str(path.relative_to(space)) for path in space.rglob("*.py")} == {
        "app.py",
        *copied,
        "processing/__init__.py",
        "processing/app/__init__.py",
        "processing/data/__init__.py",
    }
    readme = (space / "README.md").read_text()
    assert readme.startswith("---\n") and "\nsdk: gradio\n" in readme and "\napp_file: app.py\n" in readme
    requirements = (space / "requirements.txt").read_text().split()
    assert [line.split("=")[0].split(">")[0] for line in requirements] == ["torch", "transformers"]
    settings = json.loads((space / "space_settings.json").read_text())
    assert settings["model"] == str(model_dir) and len(settings["examples"]) == 2

    port = free_port()
    env = {"GRADIO_SERVER_PORT": str(port), "PYTHONPATH": "", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    server = serve([sys.executable, "-c", SPACE_LAUNCHER], port, cwd=space, env=env)
    try:
        page = open_page(browser, port)
        upload(page, scene)
        assert_pipeline_boxes(ground_in_page(page, "\n".join(EXPRESSIONS)), grounder, scene, EXPRESSIONS)
        assert page.outside_requests == []
    finally:
        stop(server)
    # the model and processor code came from the model folder (trust_remote_code), copied into the modules cache
    assert list((tmp_path / "modules").rglob("modeling_epmvg.py")) and list(
        (tmp_path / "modules").rglob("processing_epmvg.py")
    )


def test_examples_are_scenes_of_the_synthetic_benchmark_with_their_expressions(tmp_path):
    examples = write_synthetic_examples(tmp_path, num_images=3)
    assert len(examples) == 3
    for path, text in examples:
        assert Image.open(path).size == (64, 64)
        assert 1 <= len(parse_expressions(text)) <= 2
    assert write_synthetic_examples(tmp_path / "again", num_images=3) == [
        (str(tmp_path / "again" / Path(path).name), text) for path, text in examples
    ]


def test_expressions_are_the_non_blank_lines_and_blank_text_stays_for_the_pipeline_to_reject():
    assert parse_expressions("the red circle\n\n  the star \n") == ["the red circle", "the star"]
    assert parse_expressions("  \n") == ["  \n"]
    assert parse_expressions(None) == [""]


def test_without_a_model_the_app_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="run `make demo`"):
        default_model()
    assert main([]) == 1
