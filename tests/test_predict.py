"""``portrait-sdk predict``: one output per image of a file or a folder, equal to what the runtime and the effects give
for that image (the packaged models, by name); unreadable images named and skipped; setup errors before any write."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from portrait_sdk.assets import model_path
from portrait_sdk.cli import main
from portrait_sdk.effects import EFFECTS, binary_mask
from portrait_sdk.runtime import Segmenter


def person(height: int = 120, width: int = 96) -> np.ndarray:
    """A drawn head and shoulders on a green wall (RGB): enough for the selfie model to find some foreground."""
    image = np.full((height, width, 3), (40, 140, 60), np.uint8)
    cx, cy, scale = width // 2, height * 3 // 8, width / 96
    cv2.ellipse(image, (cx, cy), (round(18 * scale), round(24 * scale)), 0, 0, 360, (224, 172, 140), -1)
    cv2.ellipse(image, (cx, cy - round(15 * scale)), (round(20 * scale), round(14 * scale)), 0, 180, 360,
                (40, 30, 20), -1)
    cv2.rectangle(image, (cx - round(28 * scale), height * 5 // 8), (cx + round(28 * scale), height), (40, 40, 160), -1)
    return image


def write(path, image: np.ndarray):
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def decoded(path) -> np.ndarray:
    """The RGB pixels predict reads from ``path`` (a JPEG's after its compression)."""
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def runtime_alpha(name: str, image: np.ndarray, refine: bool) -> np.ndarray:
    return Segmenter.from_file(model_path(name), refine=refine).segment(image)


def test_an_image_gives_the_runtimes_mask(tmp_path, capsys):
    photo = write(tmp_path / "me.png", person())
    out = tmp_path / "masks"
    assert main(["predict", str(photo), "--model", "selfie_fp16", "--output", str(out)]) == 0
    mask = cv2.imread(str(out / "me.png"), cv2.IMREAD_UNCHANGED)
    expected = binary_mask(runtime_alpha("selfie_fp16", person(), refine=True))
    assert set(np.unique(expected)) == {0, 255}, "the test image should have foreground and background"
    assert mask.dtype == np.uint8 and mask.shape == (120, 96) and np.array_equal(mask, expected)
    assert sorted(p.name for p in out.iterdir()) == ["me.png"]  # no temp file left
    captured = capsys.readouterr()
    assert "wrote 1 mask file(s)" in captured.out and "selfie_fp16" in captured.out
    assert captured.err == ""  # no progress line for a single image


@pytest.mark.parametrize("effect", ["matte", "blur"])
def test_a_folder_gives_each_images_effect(effect, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    files = [write(photos / "a.png", person()), write(photos / "b.jpg", person(90, 140)),
             write(photos / "c.png", np.ascontiguousarray(person(64, 48)[:, ::-1]))]
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["predict", str(photos), "--effect", effect, "--no-refine", "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    for file in files:
        image = decoded(file)
        expected = EFFECTS[effect](image, runtime_alpha("selfie_fp16", image, refine=False))  # the default model
        assert np.array_equal(decoded(out / f"{file.stem}.png"), expected), file
    assert "predict 3/3" in capsys.readouterr().err


def test_an_unreadable_image_is_named_and_skipped_and_fails_the_run(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    write(photos / "good.png", person())
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    out = tmp_path / "out"
    assert main(["predict", str(photos), "--output", str(out)]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    captured = capsys.readouterr()
    assert f"{photos / 'broken.jpg'}: OpenCV cannot decode this image" in captured.err
    assert "skipped 1 unreadable image(s)" in captured.out


@pytest.mark.parametrize("case, message", [
    ("same stem", "would both be written to"),
    ("into the inputs", "would overwrite an input image"),
    ("effect of another task", "the hair-color effect needs a hair model"),
    ("no images", "no images in this folder"),
    ("missing input", "no such image or folder"),
])
def test_setup_errors_stop_before_anything_is_written(case, message, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    if case != "no images":
        write(photos / "a.png", person())
    if case == "same stem":
        write(photos / "a.jpg", person())
    out = photos if case == "into the inputs" else tmp_path / "out"
    source = tmp_path / "missing" if case == "missing input" else photos
    effect = ["--effect", "hair-color", "--model", "selfie_fp16"] if case == "effect of another task" else []
    assert main(["predict", str(source), "--output", str(out), *effect]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
