"""``portrait-sdk pseudolabel``: teacher labels as a soft-alpha dataset folder the readers and trainer accept.

The teacher is tests/tiny_models.py's tiny portrait model (foreground = sigmoid(6 * (R - B)) on 0..1 pixels):
red squares on blue are confident labels, a flat grey photo (R = B, p = 0.5 everywhere) has confidence 0.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from portrait_sdk.cli import main
from portrait_sdk.data import open_dataset, read_image
from portrait_sdk.pseudolabel import PseudolabelOptions, pseudolabel, soften
from portrait_sdk.runtime import Segmenter
from tiny_models import model_folder


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return model_folder(tmp_path_factory) / "tiny_portrait.tflite"


def square_photo(shift: int, size=(40, 56)) -> np.ndarray:
    """RGB: a red square on blue with a soft edge, so the teacher's probabilities spread over 0..1."""
    image = np.zeros((*size, 3), np.uint8)
    image[...] = (40, 50, 190)
    image[8:30, 10 + shift:34 + shift] = (210, 60, 70)
    return cv2.GaussianBlur(image, (7, 7), 0)


@pytest.fixture
def photos(tmp_path):
    """Three square photos, one flat grey photo and one unreadable file; returns the folder."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"square_{i}.png"), cv2.cvtColor(square_photo(4 * i), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "grey.png"), np.full((40, 56, 3), 128, np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (folder / "notes.txt").write_text("not an image, ignored")
    return folder


def folder_state(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_output_is_a_dataset_with_pseudo_labels_and_counts(teacher, photos, tmp_path):
    before = folder_state(photos)
    out = tmp_path / "out"
    calls = []
    report = pseudolabel(teacher, photos, out, progress=lambda done, total: calls.append((done, total)))

    assert (report.images, report.kept, report.labelled, report.existing) == (5, 4, 4, 0)
    assert len(report.bad) == 1 and "broken.jpg" in report.bad[0]
    assert calls[-1] == (5, 5)  # the text file is not an image; the broken one is found when read
    dataset = open_dataset(out)
    assert len(dataset) == 4 and {s.label_kind for s in dataset.samples} == {"alpha"}
    assert len(dataset.filter(label_source="pseudo")) == 4
    assert dict(dataset[0].meta)["teacher"] == "tiny_portrait.tflite"
    image, alpha = dataset.load([s.image.stem for s in dataset.samples].index("square_0"))
    assert alpha.shape == image.shape[:2] and 0 < alpha.min() < 0.5 < alpha.max() < 1  # soft, not thresholded

    record = json.loads((out / "pseudolabel.json").read_text())
    assert record["teacher"] == "tiny_portrait.tflite" and record["complete"]
    assert record["counts"] == {"images": 5, "kept": 4, "labelled": 4, "existing": 0, "dropped": 0, "bad": 1}
    assert record["options"]["temperature"] == 1.0 and 0 < record["mean_confidence"] < 1
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 0
    assert folder_state(photos) == before  # the input folder is untouched
    assert (out / "images" / "square_0.png").stat().st_ino == (photos / "square_0.png").stat().st_ino  # linked


def test_alpha_is_the_runtime_probability_times_255(teacher, photos, tmp_path):
    pseudolabel(teacher, photos, tmp_path / "out")
    image = read_image(photos / "square_1.png")
    expected = np.rint(Segmenter.from_file(teacher).segment(image) * 255).astype(np.uint8)
    alpha = cv2.imread(str(tmp_path / "out" / "alpha" / "square_1.png"), cv2.IMREAD_UNCHANGED)
    assert alpha.dtype == np.uint8 and alpha.ndim == 2
    np.testing.assert_array_equal(alpha, expected)


def test_temperature_softens_and_sharpens_as_specified(teacher, photos, tmp_path):
    prob = Segmenter.from_file(teacher).segment(read_image(photos / "square_0.png"))
    alphas = {}
    for temperature in (0.5, 2.0):
        out = tmp_path / f"t{temperature}"
        pseudolabel(teacher, photos, out, PseudolabelOptions(temperature=temperature))
        alphas[temperature] = cv2.imread(str(out / "alpha" / "square_0.png"), cv2.IMREAD_GRAYSCALE)
        logit = np.log(prob / (1 - prob))
        expected = np.rint(255 / (1 + np.exp(-logit / temperature)))
        assert np.abs(alphas[temperature] - expected).max() <= 1  # float32 rounding at .5 boundaries
    spread = {t: np.abs(a.astype(int) - 128).mean() for t, a in alphas.items()}
    assert spread[2.0] < np.abs(np.rint(prob * 255) - 128).mean() < spread[0.5]
    np.testing.assert_allclose(soften(np.float32([0.5, 0.8]), 2.0), [0.5, 1 / (1 + np.sqrt(0.25))], rtol=1e-6)


def test_min_confidence_drops_unsure_images(teacher, photos, tmp_path):
    out = tmp_path / "out"
    report = pseudolabel(teacher, photos, out, PseudolabelOptions(min_confidence=0.3))
    assert report.dropped == ("grey",) and report.kept == 3
    assert not (out / "alpha" / "grey.png").exists() and not (out / "images" / "grey.png").exists()
    assert len(open_dataset(out)) == 3
    assert json.loads((out / "pseudolabel.json").read_text())["counts"]["dropped"] == 1


def test_rerun_resumes_and_refuses_other_settings(teacher, photos, tmp_path):
    out = tmp_path / "out"
    first = pseudolabel(teacher, photos, out, PseudolabelOptions(limit=3))
    assert (first.images, first.kept) == (3, 2)  # the first three names: broken.jpg, grey.png, square_0.png
    labelled = folder_state(out / "alpha")
    (out / "index.csv").unlink()  # as if interrupted after the labels were written, before their rows were
    second = pseudolabel(teacher, photos, out)
    assert (second.existing, second.labelled, second.kept) == (2, 2, 4)
    assert {k: v for k, v in folder_state(out / "alpha").items() if k in labelled} == labelled  # not rewritten
    dataset = open_dataset(out)
    assert len(dataset.filter(label_source="pseudo")) == 4
    assert {float(dict(s.meta)["confidence"]) > 0.5 for s in dataset.samples if s.image.stem != "grey"} == {True}
    third = pseudolabel(teacher, photos, out, PseudolabelOptions(limit=3))
    assert (third.existing, third.labelled, third.kept) == (2, 0, 4)
    with pytest.raises(ValueError, match="temperature 1.0 -> 2.0"):
        pseudolabel(teacher, photos, out, PseudolabelOptions(temperature=2.0))


def test_clear_errors_name_the_path(teacher, photos, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_photos"):
        pseudolabel(teacher, tmp_path / "missing_photos", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no_teacher.tflite"):
        pseudolabel(tmp_path / "no_teacher.tflite", photos, tmp_path / "out")
    fake = tmp_path / "fake.tflite"
    fake.write_text("not a model")
    with pytest.raises(ValueError, match="fake.tflite: not a TFLite model"):
        pseudolabel(fake, photos, tmp_path / "out")
    notes = photos / "notes.txt"
    with pytest.raises(ValueError, match="notes.txt: not a teacher model"):
        pseudolabel(notes, photos, tmp_path / "out")
    with pytest.raises(ValueError, match="min_confidence"):
        pseudolabel(teacher, photos, tmp_path / "out", PseudolabelOptions(min_confidence=2))
    assert not (tmp_path / "out").exists()


def test_keras_teacher_labels_as_its_float32_export(photos, tmp_path):
    from portrait_sdk.export import export_model
    from export_cases import tiny_model

    keras_path = tmp_path / "teacher.keras"
    tiny_model("portraitnet", 2).save(keras_path)
    exported = export_model(keras_path, tmp_path / "export", "teacher", "float32", latency_runs=1)
    pseudolabel(keras_path, photos, tmp_path / "from_keras", PseudolabelOptions(limit=3))
    pseudolabel(exported, photos, tmp_path / "from_tflite", PseudolabelOptions(limit=3))
    for name in ("from_keras", "from_tflite"):
        assert len(open_dataset(tmp_path / name)) == 2
    assert folder_state(tmp_path / "from_keras" / "alpha").keys() == {"grey.png", "square_0.png"}
    for stem in ("grey", "square_0"):
        a, b = (cv2.imread(str(tmp_path / name / "alpha" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
                for name in ("from_keras", "from_tflite"))
        np.testing.assert_array_equal(a, b)


def test_cli(teacher, photos, tmp_path, capsys):
    assert main(["pseudolabel", str(teacher), str(photos), str(tmp_path / "out"), "--min-confidence", "0.3"]) == 0
    captured = capsys.readouterr()
    assert "3 labelled images" in captured.out and "1 dropped" in captured.out and "1 unreadable" in captured.out
    assert "broken.jpg" in captured.err and "pseudolabel 5/5" in captured.err
    assert main(["pseudolabel", str(teacher), str(tmp_path / "nowhere"), str(tmp_path / "out2")]) == 2
    assert "nowhere: no such images folder" in capsys.readouterr().err
