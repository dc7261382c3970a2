"""The browser demo in headless Chromium on a fake camera: the page segments the camera's frames with MediaPipe
Tasks Vision, letterboxed as the Python runtime does, and each mask's foreground fraction is within 2 percentage
points of ``Segmenter.segment`` on the same frame (the page hands over the exact frame it segmented).

Runs with the released portrait model packaged with the SDK and with MediaPipe's selfie model. Needs Debian's
chromium (/usr/bin/chromium), node, ``npm ci --prefix web`` and the shared folder (the MediaPipe selfie model with
metadata, and the sample clip): .ci/run installs the first three.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_system
from live_server import running_server

from portrait_sdk.assets import default_model
from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec
from portrait_sdk.runtime import Segmenter

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 0.02  # foreground fraction, browser vs Python runtime
MIN_IOU = 0.95  # browser vs Python runtime mask: seen 0.969 to 0.999 (the released int8 PortraitNet lowest: the
# page runs its int8 kernels in WASM); against a stretched input's mask 0.76 to 0.98, hence also "matches > stretched"


@pytest.fixture(scope="module")
def browser_tools():
    require_system("chromium", "node", "web_packages")


@pytest.fixture(scope="module", params=["released", "selfie"])
def portrait_models(request, shared_dir, tmp_path_factory):
    """A models folder and the model to open: the released portrait model packaged with the SDK, and MediaPipe's
    selfie model (its metadata satisfies ImageSegmenter) carded as a letterboxing portrait model."""
    if request.param == "released":
        model = default_model(("portrait",))
        return model.parent, model.stem
    folder = tmp_path_factory.mktemp("models")
    shutil.copy(shared_dir / "baselines" / "selfie_segmentation_with_metadata.tflite", folder / "selfie.tflite")
    ModelCard(name="selfie", architecture="mediapipe_selfie", task="portrait", precision="float32",
              input=InputSpec(256, 256, resize="letterbox"),
              output=OutputSpec(kind="sigmoid", labels=("person",), foreground_channel=0),
              license="Apache-2.0", training_data="MediaPipe (baseline stand-in)").save(folder / "selfie.json")
    return folder, "selfie"


def png_from_data_url(url: str) -> np.ndarray:
    """The PNG of a data URL as an array: RGB (H, W, 3), or with alpha RGBA (H, W, 4)."""
    header, _, payload = url.partition(",")
    assert header == "data:image/png;base64", header
    image = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a & b) / max(1, np.sum(a | b)))


def test_browser_masks_match_the_python_runtime(browser_tools, portrait_models, shared_dir, tmp_path):
    clip = shared_dir / "datasets" / "samples" / "portrait_clip.y4m"
    out = tmp_path / "samples.json"
    folder, name = portrait_models
    with running_server(folder, log=tmp_path / "server.log") as server:
        command = ["node", str(REPO / "web" / "check_demo.mjs"), "--url", f"{server.url}/?model={name}&effect=blur",
                   "--video", str(clip), "--user-data-dir", str(tmp_path / "chromium-profile"), "--out", str(out),
                   "--screenshots", str(tmp_path), "--samples", "4"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    screenshots = {effect: tmp_path / f"demo_{effect}.png" for effect in ("blur", "replace", "matte")}
    artifacts = os.environ.get("PORTRAIT_SDK_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        for path in screenshots.values():
            shutil.copy(path, Path(artifacts) / f"browser_{name}_{path.name}")
    shots = {effect: cv2.imread(str(path)) for effect, path in screenshots.items()}
    assert all(shot is not None for shot in shots.values())
    assert shots["blur"].std() > 0 and len({shot.tobytes() for shot in shots.values()}) == 3, "effects look alike"

    runtime = Segmenter.from_file(folder / f"{name}.tflite")
    card = runtime.card
    other_fit = "letterbox" if card.input.resize == "stretch" else "stretch"  # the geometry the card does not ask
    other = Segmenter(runtime.path, replace(card, input=replace(card.input, resize=other_fit)))
    report = json.loads(out.read_text())
    for sample in report["samples"]:
        frame = png_from_data_url(sample["frame"])[..., :3]
        python = runtime.segment(frame) >= 0.5
        browser = png_from_data_url(sample["mask"])[..., 3]  # the page's mask, any letterbox cropped away
        browser = cv2.resize(browser, frame.shape[1::-1], interpolation=cv2.INTER_LINEAR) >= 128
        matches, mismatched = iou(browser, python), iou(browser, other.segment(frame) >= 0.5)
        print(f"{report['browser']}: frame {sample['frames']} {frame.shape[1]}x{frame.shape[0]}: foreground "
              f"browser {sample['foregroundFraction']:.4f}, python {python.mean():.4f}; mask IoU with the "
              f"runtime's {matches:.4f} (with a {other_fit} input's {mismatched:.4f})")
        assert 0.05 < python.mean() < 0.95, "the sample clip should show a person"
        assert abs(sample["foregroundFraction"] - python.mean()) <= TOLERANCE
        assert matches >= MIN_IOU and matches > mismatched, f"the page should fit frames as the card says ({card.input.resize})"
