"""``portrait-sdk bench``: FPS and per-stage ms of the preview pipeline, the static-scene flicker measure with and
without smoothing, the JSON + PNG report, and the default clip under the data root."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from tiny_models import clip_frame, model_folder, write_clip

from portrait_sdk.bench import BenchConfig, measure_flicker
from portrait_sdk.cli import main
from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec, card_path
from portrait_sdk.preview import STAGES


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    return model_folder(tmp_path_factory) / "tiny_portrait.tflite"


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("bench_clip") / "clip.mp4", 16)


FAST = ["--frames", "6", "--warmup", "2", "--flicker-frames", "5"]


def test_bench_prints_fps_and_stage_times_and_writes_json_and_png(model, clip, tmp_path, capsys):
    assert main(["bench", "--model", str(model), "--video", str(clip), "--output", str(tmp_path), *FAST]) == 0
    out = capsys.readouterr().out
    assert "6 frames" in out and "FPS end to end" in out
    for stage in STAGES:
        assert any(line.split()[:1] == [stage] and line.endswith(" ms") for line in out.splitlines()), stage
    for mode in ("none", "ema", "uncertainty"):
        assert any(line.split()[:1] == [mode] for line in out.splitlines()), mode
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["model"] == "tiny_portrait" and results["speed"]["frames"] == 6
    assert results["speed"]["fps"] > 0 and set(results["speed"]["stages_ms"]) == set(STAGES)
    assert set(results["flicker"]["mean_abs_change"]) == {"none", "ema", "uncertainty"}
    chart = cv2.imread(str(tmp_path / "bench.png"))
    assert chart is not None and chart.shape[0] > 100 and chart.shape[1] > 400


def test_flicker_is_zero_on_a_still_scene_and_smoothing_lowers_it(model, clip):
    frame = clip_frame(0)
    still = measure_flicker(BenchConfig(model, clip, flicker_frames=6, noise=0.0, refine=False), frame)
    assert all(value < 1e-6 for value in still.values()), still
    # pixel noise near the red / blue border moves the tiny model's mask; smoothing must damp that
    border = np.full_like(frame, (120, 40, 120))
    noisy = measure_flicker(BenchConfig(model, clip, flicker_frames=20, noise=25.0, refine=False), border)
    assert noisy["none"] > 1e-3, noisy
    assert noisy["ema"] < 0.8 * noisy["none"] and noisy["uncertainty"] < noisy["none"], noisy


def test_bench_defaults_to_the_sample_clip_under_the_data_root(model, clip, tmp_path, monkeypatch, capsys):
    (tmp_path / "samples").mkdir()
    shutil.copy(clip, tmp_path / "samples" / "portrait_clip.mp4")
    monkeypatch.setenv("PORTRAIT_SDK_DATA", str(tmp_path))
    assert main(["bench", "--model", str(model), *FAST]) == 0
    assert "speed on portrait_clip.mp4" in capsys.readouterr().out


def test_bench_errors_are_clear(model, clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("portrait_sdk.assets.MODELS_DIR", tmp_path / "empty")
    assert main(["bench", "--video", str(clip), *FAST]) == 2
    assert "no packaged portrait or matting model" in capsys.readouterr().err
    assert main(["bench", "--model", str(model), "--video", str(clip), "--warmup", "100"]) == 2
    assert "too short to benchmark" in capsys.readouterr().err
    assert main(["bench", "--model", str(model), "--video", str(clip), "--effect", "sparkles"]) == 2
    assert "unknown effect" in capsys.readouterr().err


def test_bench_on_the_real_clip_with_the_selfie_baseline(shared_dir, tmp_path, capsys):
    """The stand-in for the default portrait model (MediaPipe's selfie model: 256x256, sigmoid) on the sample clip."""
    model = tmp_path / "selfie.tflite"
    shutil.copy(shared_dir / "baselines" / "selfie_segmentation.tflite", model)
    ModelCard(name="selfie_baseline", architecture="mediapipe_selfie", task="portrait", precision="float32",
              input=InputSpec(256, 256, resize="stretch"),
              output=OutputSpec(kind="sigmoid", labels=("person",), foreground_channel=0)).save(card_path(model))
    video = shared_dir / "datasets" / "samples" / "portrait_clip.mp4"
    assert main(["bench", "--model", str(model), "--video", str(video), "--frames", "20", "--warmup", "3",
                 "--flicker-frames", "8"]) == 0
    assert "20 frames" in capsys.readouterr().out
