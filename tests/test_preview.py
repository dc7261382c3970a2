"""The preview app (``portrait-sdk preview``): headless runs on a video and a photo write the effect's output, the
packaged-model lookup, the keys (effect, model, background, colour, snapshot) in a window loop driven by fake key
presses, and clear messages where there is no camera, no display or no model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_environment import BLOCK_TENSORFLOW
from tiny_models import clip_frame, model_folder, write_clip

import portrait_sdk.assets as assets
from portrait_sdk.cli import main
from portrait_sdk.effects import blur_background
from portrait_sdk.preview import STAGES, ImageSource, Pipeline, StageStats, VideoSource
from portrait_sdk.preview import app
from portrait_sdk.runtime import Segmenter

FRAMES = 12
REPO = Path(__file__).resolve().parents[1]


def run_preview(argv: list[str]) -> int:
    """``portrait-sdk preview ARGV``."""
    return main(["preview", *argv])


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return model_folder(tmp_path_factory)


@pytest.fixture()
def packaged(models, monkeypatch):
    """The tiny models as the package's own (``portrait_sdk/assets/models``)."""
    monkeypatch.setattr(assets, "MODELS_DIR", models)
    return models


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", FRAMES)


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(clip_frame(3), cv2.COLOR_RGB2BGR))
    return path


def _read_video(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def test_headless_video_to_mp4(models, clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert run_preview(["--video", str(clip), "--model", str(models / "tiny_portrait.tflite"), "--headless",
                     "--output", str(out)]) == 0
    frames = _read_video(out)
    assert len(frames) == FRAMES and frames[0].shape == (48, 64, 3)
    assert not list(tmp_path.glob(".*tmp*")), "the temp file was not renamed"
    printed = capsys.readouterr().out
    assert f"{FRAMES} frame(s)" in printed and "FPS" in printed and all(stage in printed for stage in STAGES)


def test_headless_run_imports_no_tensorflow(models, clip, tmp_path):
    out = tmp_path / "out.png"
    code = BLOCK_TENSORFLOW + textwrap.dedent(f"""
        from portrait_sdk.cli import main
        assert main(["preview", "--video", {str(clip)!r}, "--model", {str(models / "tiny_portrait.tflite")!r},
                     "--headless", "--output", {str(out)!r}, "--frames", "2"]) == 0
        assert not any(m.split(".")[0] in ("tensorflow", "tf_keras") for m in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and out.is_file(), result.stderr


def test_headless_matte_of_a_photo_to_png(models, photo, tmp_path):
    out = tmp_path / "matte.png"
    assert run_preview(["--image", str(photo), "--model", str(models / "tiny_portrait.tflite"), "--effect", "matte",
                     "--headless", "--output", str(out)]) == 0
    matte = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert matte.shape == (48, 64)
    assert matte[24, 20] > 200 and matte[5, 60] < 50  # the red square is the "person", the blue wall is not


def test_headless_png_of_a_video_is_its_last_frame(models, clip, tmp_path):
    out = tmp_path / "last.png"
    assert run_preview(["--video", str(clip), "--model", str(models / "tiny_portrait.tflite"), "--headless",
                     "--output", str(out), "--frames", "5", "--no-refine", "--smoothing", "none"]) == 0
    source = VideoSource.file(clip)
    for _ in range(5):
        fifth = cv2.cvtColor(source.read(), cv2.COLOR_BGR2RGB)
    segmenter = Segmenter.from_file(models / "tiny_portrait.tflite")
    expected = blur_background(fifth, segmenter.segment(fifth))
    got = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_packaged_default_model_needs_no_model_argument(packaged, photo, tmp_path, capsys):
    out = tmp_path / "blurred.png"
    assert run_preview(["--image", str(photo), "--headless", "--output", str(out)]) == 0
    assert "tiny_portrait" in capsys.readouterr().out and out.is_file()
    assert assets.default_model(("portrait", "matting")) == packaged / "tiny_portrait.tflite"
    assert assets.model_path("tiny_hair") == packaged / "tiny_hair.tflite"
    assert assets.packaged_models("hair") == [packaged / "tiny_hair.tflite"]


def test_missing_packaged_model_says_what_to_do(tmp_path, photo, monkeypatch, capsys):
    monkeypatch.setattr(assets, "MODELS_DIR", tmp_path / "empty")
    assert run_preview(["--image", str(photo), "--headless", "--output", str(tmp_path / "o.png")]) == 2
    error = capsys.readouterr().err
    assert "no packaged portrait or matting model" in error and "--model PATH" in error
    assert run_preview(["--image", str(photo), "--model", "nonexistent_model", "--headless",
                     "--output", str(tmp_path / "o.png")]) == 2
    assert "neither a .tflite file nor a model name" in capsys.readouterr().err


def test_released_files_in_export_resolve_by_name(packaged, photo, tmp_path, monkeypatch, capsys):
    """``--model mmnet_int8`` from the checkout: a released file's stem, not only a packaged model's name."""
    released = tmp_path / "checkout" / "export"
    released.mkdir(parents=True)
    for suffix in (".tflite", ".json"):
        shutil.copy(packaged / f"tiny_portrait{suffix}", released / f"tiny_released{suffix}")
    monkeypatch.chdir(released.parent)
    assert assets.model_path("tiny_released") == assets.RELEASED_DIR / "tiny_released.tflite"
    assert assets.model_path("tiny_hair") == packaged / "tiny_hair.tflite"  # packaged names first
    out = tmp_path / "o.png"
    assert run_preview(["--image", str(photo), "--model", "tiny_released", "--headless", "--output", str(out)]) == 0
    assert out.is_file()
    assert run_preview(["--image", str(photo), "--model", "mmnet_int9", "--headless", "--output", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"packaged (in {packaged}): tiny_hair, tiny_portrait;" in error
    assert f"released (in {released}): tiny_released" in error


def test_checkout_release_names_resolve(monkeypatch):
    monkeypatch.chdir(REPO)
    assert assets.model_path("mmnet_int8") == assets.RELEASED_DIR / "mmnet_int8.tflite"


def test_effect_needs_a_model_of_its_task(models, photo, tmp_path, capsys):
    assert run_preview(["--image", str(photo), "--model", str(models / "tiny_portrait.tflite"), "--effect",
                     "hair-color", "--headless", "--output", str(tmp_path / "o.png")]) == 2
    assert "needs a hair model" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the DISPLAY check is Linux's")
def test_no_display_suggests_headless(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run_preview(["--webcam"]) == 2
    error = capsys.readouterr().err
    assert "no display" in error and "--headless" in error and "--video" in error


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="an X11 display name")
def test_unreachable_display_is_caught_before_opening_a_window(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":4242")  # OpenCV's Qt backend would abort the whole process on this
    assert run_preview(["--webcam"]) == 2
    error = capsys.readouterr().err
    assert "cannot open a window" in error and "--headless" in error


def test_no_camera_suggests_a_file(models, tmp_path, capsys):
    assert run_preview(["--camera", "97", "--model", str(models / "tiny_portrait.tflite"), "--headless",
                     "--output", str(tmp_path / "o.mp4")]) == 2
    error = capsys.readouterr().err
    assert "no camera at index 97" in error and "--video FILE" in error


@pytest.mark.parametrize("argv, message", [
    (["--video", "x.mp4", "--headless"], "--headless needs --output"),
    (["--video", "x.mp4", "--output", "o.mp4"], "add --headless"),
    (["--video", "x.mp4", "--headless", "--output", "o.gif"], "unknown output type"),
    (["--video", "missing.mp4", "--headless", "--output", "o.mp4"], "no such video file"),
])
def test_bad_arguments_explain_themselves(argv, message, capsys):
    assert run_preview(argv) == 2
    assert message in capsys.readouterr().err


def test_a_source_is_required(capsys):
    with pytest.raises(SystemExit):
        run_preview([])
    error = capsys.readouterr().err
    assert "one of the arguments --webcam --camera --video --image is required" in error


def test_help_documents_the_keys(capsys):
    with pytest.raises(SystemExit):
        run_preview(["--help"])
    text = capsys.readouterr().out
    for key, action in app.KEYS.items():
        assert f"  {key}  {action}" in text


def test_pipeline_times_every_stage(models, clip):
    pipeline = Pipeline(Segmenter.from_file(models / "tiny_portrait.tflite", smoothing="ema"), "blur")
    source, stats = VideoSource.file(clip), StageStats()
    while (result := pipeline.step(source)) is not None:
        assert set(result.times_ms) == set(STAGES) and min(result.times_ms.values()) >= 0
        assert result.output.shape == result.frame.shape and result.alpha.shape == result.frame.shape[:2]
        stats.add(result.times_ms)
    assert stats.frames == FRAMES and stats.fps() > 0


class FakeWindow:
    """Stands in for OpenCV's window functions: records what is shown and presses the given keys in turn,
    noting the preview's (effect, model) as each key is pressed."""

    def __init__(self, keys: str, preview: app.Preview):
        self.keys, self.preview, self.shown, self.states = list(keys), preview, [], []

    def wait_key(self, delay_ms: int) -> int:
        self.states.append((self.preview.pipeline.effect, self.preview.pipeline.segmenter.card.name))
        return ord(self.keys.pop(0)) if self.keys else ord("q")

    def install(self, monkeypatch):
        monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
        monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
        monkeypatch.setattr(cv2, "imshow", lambda name, image: self.shown.append(image.copy()))
        monkeypatch.setattr(cv2, "waitKey", self.wait_key)
        monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)


def test_window_keys_switch_effect_model_background_colour_and_save(packaged, photo, tmp_path, monkeypatch):
    backgrounds = tmp_path / "backgrounds"
    backgrounds.mkdir()
    for name, color in (("a.png", (0, 255, 0)), ("b.png", (255, 0, 255))):
        cv2.imwrite(str(backgrounds / name), np.full((10, 10, 3), color, np.uint8))
    options = app.PreviewOptions(image=photo, backgrounds=(backgrounds,), snapshot_dir=tmp_path / "shots")
    preview = app.Preview(options)
    window = FakeWindow("ebseecex", preview)
    window.install(monkeypatch)
    app.run_window(preview, ImageSource(photo, repeat=True))
    assert window.states == [
        ("blur", "tiny_portrait"),  # e
        ("replace", "tiny_portrait"),  # b: second background
        ("replace", "tiny_portrait"),  # s: snapshot
        ("replace", "tiny_portrait"),  # e
        ("matte", "tiny_portrait"),  # e: hair-color needs the hair model
        ("hair-color", "tiny_hair"),  # c: next colour
        ("hair-color", "tiny_hair"),  # e: nails has no model (skipped), blur takes the portrait model again
        ("blur", "tiny_portrait"),  # x: not a key
        ("blur", "tiny_portrait"),  # q
    ]
    assert "skipped nails" in preview.notice
    assert len(window.shown) == 9 and all(image.shape == (48, 64, 3) for image in window.shown)
    shots = list((tmp_path / "shots").glob("snapshot-*.png"))
    assert len(shots) == 1
    corner = cv2.imread(str(shots[0]))[2, 2].astype(int)  # BGR, background: the second image, magenta
    assert np.abs(corner - (255, 0, 255)).max() <= 12
    assert preview.colors[preview.color_index] == app.COLORS[0]
