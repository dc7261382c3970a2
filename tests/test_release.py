"""``portrait-sdk release`` rebuilds released files from weights: fp16 + the better int8, scored cards, a report."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from export_cases import tiny_model
from tiny_models import model_folder

from portrait_sdk.cli import main
from portrait_sdk.metadata import read_metadata
from portrait_sdk.model_card import ModelCard
from portrait_sdk.release import Evaluation, ReleaseEntry, load_manifest, release


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A data root with a labelled folder and calibration images, and trained weights of a tiny portrait model."""
    root = tmp_path_factory.mktemp("release")
    data = root / "data"
    for sub in ("val/images", "val/masks", "train/images"):
        (data / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        mask = np.zeros((30, 40), np.uint8)
        mask[5:25, 10:30] = 255
        cv2.imwrite(str(data / "val/images" / f"{i}.png"), image)
        cv2.imwrite(str(data / "val/masks" / f"{i}.png"), mask)
        cv2.imwrite(str(data / "train/images" / f"{i}.png"), image)
    tiny_model("portraitnet", 2).save(root / "weights.keras")
    return root


def _manifest(folder, weights, names=("small",), extra=""):
    folder.mkdir(parents=True, exist_ok=True)
    baseline = model_folder_path[0]
    text = ""
    for name in names:
        text += f"""
[[model]]
name = "{name}"
weights = "{weights}"
representative = "train/images"
evaluations = [{{ label = "val", data = "val" }}]
baselines = ["{baseline}", "missing_baseline.tflite"]
license = "test licence"
training_data = "four noise images"
{extra}
"""
    path = folder / "release.toml"
    path.write_text(text)
    return path


model_folder_path: list = []


@pytest.fixture(autouse=True)
def _no_gpu(monkeypatch):
    """The release's GPU parity gate sees no GPU path unless a test gives it one (test_gpu_check and
    test_released run the real one), so these tests do not depend on the machine's Vulkan driver."""
    import portrait_sdk.gpu_check

    def unavailable(path, **kwargs):
        raise portrait_sdk.gpu_check.GpuUnavailableError("no Vulkan device (test)")

    monkeypatch.setattr(portrait_sdk.gpu_check, "check_gpu", unavailable)


@pytest.fixture(autouse=True)
def _data_root(workspace, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("PORTRAIT_SDK_DATA", str(workspace / "data"))
    if not model_folder_path:
        model_folder_path.append(model_folder(tmp_path_factory) / "tiny_portrait.tflite")


def test_release_writes_fp16_and_int8_with_scored_cards_and_a_report(workspace, capsys):
    manifest = _manifest(workspace / "export", workspace / "weights.keras")
    assert main(["release", str(manifest), "--latency-runs", "1"]) == 0
    assert "small_fp16.tflite, small_int8.tflite" in capsys.readouterr().out
    out = manifest.parent
    report = json.loads((out / "report.json").read_text())
    (model,) = report["models"]
    rows = model["scores"]["val"]
    assert rows["images"] == 4 and set(rows) == {"images", "float32", "float16", "int8", "baseline:tiny_portrait"}
    assert model["int8_choice"] == "int8"
    assert model["int8_drop"] == pytest.approx(rows["float32"]["iou"] - rows["int8"]["iou"], abs=1e-4)

    for suffix, precision in (("fp16", "float16"), ("int8", "int8")):
        path = out / f"small_{suffix}.tflite"
        card = ModelCard.load(path.with_suffix(".json"))
        assert card.name == f"small_{suffix}" and card.precision == precision and card.license == "test licence"
        assert card.metrics["val"]["iou"] == rows[precision]["iou"]
        assert ModelCard.from_dict(read_metadata(path)["card"]) == card  # the copy inside the metadata carries the scores too
    assert not (out / "small_fp32.tflite").exists()  # the float32 reference is not shipped

    markdown = (out / "REPORT.md").read_text()
    assert "## small" in markdown and "`small_int8.tflite` (full-integer PTQ)" in markdown
    assert "baseline `tiny_portrait`" in markdown
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The headline latency: every file and the baseline timed together, with each file's ratio to the baseline.
    assert set(model["latency_ms"]) == set(rows) - {"images"} and min(model["latency_ms"].values()) > 0
    ratio = model["latency_ms"]["float16"] / model["latency_ms"]["baseline:tiny_portrait"]
    assert f"float16 {model['latency_ms']['float16']:.2f} ms ({ratio:.2f}x tiny_portrait)" in markdown


def test_only_rebuilds_the_named_models_and_keeps_the_rest_of_the_report(workspace, monkeypatch, tmp_path):
    import portrait_sdk.assets

    monkeypatch.setattr(portrait_sdk.assets, "MODELS_DIR", tmp_path / "assets")
    (tmp_path / "assets").mkdir()
    manifest = _manifest(tmp_path / "export", workspace / "weights.keras", names=("first", "second"),
                         extra="package = true")
    release(manifest, only=["second"], latency_runs=1)
    assert [m["name"] for m in json.loads((manifest.parent / "report.json").read_text())["models"]] == ["second"]
    assert not (manifest.parent / "first_fp16.tflite").exists()
    assert (tmp_path / "assets" / "second_int8.tflite").is_file()  # package = true: the preview ships it
    assert (tmp_path / "assets" / "second_int8.json").is_file()

    release(manifest, only=["first"], latency_runs=1)
    report = json.loads((manifest.parent / "report.json").read_text())
    assert [m["name"] for m in report["models"]] == ["first", "second"]  # manifest order

    manifest.write_text(manifest.read_text().replace("package = true", 'package = "fp16"'))
    release(manifest, only=["second"], latency_runs=1)
    assert (tmp_path / "assets" / "second_fp16.tflite").is_file()  # package = "fp16": that file ships instead
    assert not list((tmp_path / "assets").glob("second_int8.*"))  # ... and replaces the int8 one
    manifest.write_text(manifest.read_text().replace('package = "fp16"', 'package = "fp32"'))
    with pytest.raises(ValueError, match=r"'first': package must be true, false, .fp16. or .int8., got 'fp32'"):
        load_manifest(manifest)


def test_manifest_errors_name_the_file_and_the_problem(tmp_path):
    manifest = _manifest(tmp_path, "nowhere.keras", extra='colour = "red"')
    with pytest.raises(ValueError, match=r"release\.toml: \[\[model\]\] 'small': unknown key 'colour'"):
        load_manifest(manifest)
    manifest.write_text('[[model]]\nname = "x"\nweights = "w.keras"\n')
    with pytest.raises(ValueError, match="'x': missing required key 'representative'"):
        load_manifest(manifest)
    with pytest.raises(FileNotFoundError, match="no such release manifest"):
        load_manifest(tmp_path / "absent.toml")
    manifest = _manifest(tmp_path, "nowhere.keras")
    assert main(["release", str(manifest), "--only", "other"]) == 2
    with pytest.raises(FileNotFoundError, match="nowhere.keras: trained weights of 'small' not found"):
        release(manifest)


DEFAULTS = """
[defaults]
representative = "train/images"
evaluations = [{ label = "val", data = "val" }]
baselines = ["shared.tflite"]
license = "shared licence"

[[model]]
name = "first"
weights = "first.keras"

[[model]]
name = "second"
weights = "w/second.keras"
license = "its own licence"
baselines = []
evaluations = [{ label = "hard", data = "val", filter = { source = "x" }, passes = 2 }]
"""


def test_defaults_fill_every_model_and_a_models_own_keys_override_them(tmp_path):
    manifest = tmp_path / "release.toml"
    manifest.write_text(DEFAULTS)
    first, second = load_manifest(manifest)
    assert first == ReleaseEntry(name="first", weights=str(tmp_path / "first.keras"), representative="train/images",
                                 evaluations=[Evaluation("val", "val")], baselines=[str(tmp_path / "shared.tflite")],
                                 license="shared licence")
    assert second == ReleaseEntry(name="second", weights=str(tmp_path / "w" / "second.keras"),
                                  representative="train/images", license="its own licence",
                                  evaluations=[Evaluation("hard", "val", {"source": "x"}, 2)])


def test_manifest_keys_are_checked_as_recipes_are_naming_the_table_and_the_key(tmp_path):
    manifest = tmp_path / "release.toml"
    cases = {
        'license = "shared licence"': ('licence = "shared licence"', r"\[defaults\]: unknown key 'licence'"),
        'baselines = ["shared.tflite"]': ('baselines = "x.tflite"', r"\[defaults\] baselines must be list, got str"),
        "passes = 2": ('passes = "2"', r"\[\[model\]\] 'second' evaluations\[\] passes must be int, got str"),
        ', data = "val" }]\nbaselines': (' }]\nbaselines', r"\[defaults\] evaluations\[\]: missing required key 'data'"),
        'license = "its own licence"': ("license = 1", r"\[\[model\]\] 'second' license must be str, got int"),
        "[defaults]": ("[default]", r"unknown table \[default\]; valid tables: \[defaults\], \[\[model\]\]"),
    }
    for original, (bad, message) in cases.items():
        assert DEFAULTS.count(original) == 1, original
        manifest.write_text(DEFAULTS.replace(original, bad))
        with pytest.raises(ValueError, match=re.escape(f"{manifest}: ") + message):
            load_manifest(manifest)


def test_qat_weights_compete_with_ptq_and_the_better_int8_is_released(workspace, tmp_path):
    from portrait_sdk.quantize import quantize_for_training

    qat = quantize_for_training(tiny_model("portraitnet", 2))
    rng = np.random.default_rng(0)
    for _ in range(3):  # fake-quant ranges that follow the data, as after QAT fine-tuning
        qat(rng.uniform(0, 1, (4, 32, 32, 3)).astype(np.float32), training=True)
    qat.save(tmp_path / "qat.keras")
    manifest = _manifest(tmp_path / "export", workspace / "weights.keras",
                         extra=f'qat_weights = "{tmp_path / "qat.keras"}"')
    (model,) = release(manifest, latency_runs=1)["models"]
    rows = model["scores"]["val"]
    assert {"int8", "qat_int8"} <= set(rows)
    better = "qat_int8" if rows["qat_int8"]["iou"] > rows["int8"]["iou"] else "int8"
    assert model["int8_choice"] == better
    card = ModelCard.load(manifest.parent / "small_int8.json")
    assert card.precision == better and card.metrics["val"]["iou"] == rows[better]["iou"]


def test_an_int8_over_the_limit_is_not_released(workspace, monkeypatch, tmp_path):
    import portrait_sdk.assets
    import portrait_sdk.release

    monkeypatch.setattr(portrait_sdk.assets, "MODELS_DIR", tmp_path / "assets")
    (tmp_path / "assets").mkdir()
    manifest = _manifest(tmp_path / "export", workspace / "weights.keras", extra="package = true")
    out = manifest.parent
    (out / "small_int8.tflite").write_bytes(b"an older int8 release")
    monkeypatch.setattr(portrait_sdk.release, "INT8_DROP_LIMIT", -1.0)  # any int8 is over it
    release(manifest, latency_runs=1)
    (model,) = json.loads((out / "report.json").read_text())["models"]
    assert not model["int8_within_limit"] and list(model["files"]) == ["fp16"]
    assert not (out / "small_int8.tflite").exists() and not (out / "small_int8.json").exists()
    assert (out / "small_fp16.tflite").is_file()
    assert (tmp_path / "assets" / "small_fp16.tflite").is_file()  # package = true falls back to float16
    assert "not released" in (out / "REPORT.md").read_text()


def test_an_int8_whose_gpu_output_strays_from_its_cpu_output_is_not_released(workspace, monkeypatch, tmp_path):
    import portrait_sdk.gpu_check
    from portrait_sdk.gpu_check import GpuReport

    checked = []

    def strays(path, **kwargs):
        checked.append(path)
        return GpuReport(str(path), True, [], max_abs_diff=0.3, tolerance=0.1, precision="int8", output_scale=1.0)

    monkeypatch.setattr(portrait_sdk.gpu_check, "check_gpu", strays)
    manifest = _manifest(tmp_path / "export", workspace / "weights.keras")
    out = manifest.parent
    release(manifest, latency_runs=1)
    (model,) = json.loads((out / "report.json").read_text())["models"]
    assert model["int8_within_limit"] and not model["int8_released"] and list(model["files"]) == ["fp16"]
    assert len(checked) == 1 and not (out / "small_int8.tflite").exists()
    markdown = (out / "REPORT.md").read_text()
    assert "GPU and CPU outputs disagree: not released" in markdown
    assert "small_int8.tflite: FAIL" in markdown and str(tmp_path) not in model["int8_gpu"]["summary"]
