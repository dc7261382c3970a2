"""Dataset readers: every supported layout on tiny synthetic copies, decoded label values, and every bad input."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from portrait_sdk.data import (
    DatasetError,
    from_celeba_hair,
    from_eg1800,
    from_figaro,
    from_folder,
    from_matting_human,
    from_supervisely,
    jpeg_is_complete,
    open_dataset,
    validate,
)

H, W = 24, 32


def _photo(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array), path
    return path


def _square_mask(h: int = H, w: int = W, level: int = 255) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[4:12, 8:20] = level
    return mask


def _folder(root: Path, labels: str = "masks", n: int = 3) -> Path:
    for i in range(n):
        _write(root / "images" / f"s{i}.jpg", _photo(i))
        label = _square_mask() if labels == "masks" else np.tile(np.arange(W, dtype=np.uint8) * 8, (H, 1))
        _write(root / labels / f"s{i}.png", label)
    return root


# --- each format ---------------------------------------------------------------------------------------------------

def test_folder_alpha_is_soft_and_index_csv_becomes_meta(tmp_path):
    root = _folder(tmp_path / "portrait" / "val", labels="alpha")
    (tmp_path / "portrait" / "index.csv").write_text(
        "stem,split,label_source\ns0,val,teacher\ns1,val,service\ns2,val,teacher\nother,train,teacher\n")
    ds = from_folder(root)
    assert len(ds) == 3 and ds[0].label_kind == "alpha" and dict(ds[1].meta) == {"split": "val",
                                                                                  "label_source": "service"}
    image, alpha = ds.load(0)
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert alpha.dtype == np.float32 and alpha.shape == (H, W)
    np.testing.assert_allclose(alpha[0], np.arange(W) * 8 / 255, atol=1e-6)
    assert [s.image.stem for s in ds.filter(label_source="teacher")] == ["s0", "s2"]
    assert len(ds.filter(label_source=("teacher", "service"))) == 3
    with pytest.raises(ValueError, match="labl_source"):
        ds.filter(labl_source="teacher")

    more = ds.oversample(3, label_source="service")  # the rare part repeated, everything else once
    assert sorted(s.image.stem for s in more) == ["s0", "s1", "s1", "s1", "s2"] and len(ds) == 3
    assert ds.oversample(1, label_source="service").samples == ds.samples
    with pytest.raises(ValueError, match="no sample matches"):
        ds.oversample(2, label_source="manual")
    with pytest.raises(ValueError, match="times must be >= 1"):
        ds.oversample(0, label_source="service")


def test_folder_rgb_matches_the_written_bgr_file(tmp_path):
    root = tmp_path / "ds"
    _write(root / "images" / "a.png", _photo(3))
    _write(root / "masks" / "a.png", _square_mask())
    image, _ = from_folder(root).load(0)
    np.testing.assert_array_equal(image, _photo(3)[:, :, ::-1])


@pytest.mark.parametrize("level", [255, 1])
def test_folder_masks_0_255_and_0_1_decode_to_0_1(tmp_path, level):
    """The nails / hair layout: masks/ with 0/255, and the common 0/1 variant."""
    root = tmp_path / "nails"
    _write(root / "images" / "n0.jpg", _photo())
    _write(root / "masks" / "n0.png", _square_mask(level=level))
    _, mask = from_folder(root).load(0)
    np.testing.assert_array_equal(mask, _square_mask(level=1).astype(np.float32))


def test_folder_jpeg_mask_with_ringing_is_accepted_and_thresholded(tmp_path):
    root = tmp_path / "nails"
    _write(root / "images" / "n0.jpg", _photo())
    _write(root / "masks" / "n0.jpg", _square_mask())
    _, mask = from_folder(root).load(0)
    np.testing.assert_array_equal(mask, _square_mask(level=1).astype(np.float32))


def test_eg1800_portraitnet_layout(tmp_path):
    root = tmp_path / "data" / "EG1800"
    label = _square_mask(level=1)
    label[0, :] = 255  # PortraitNet sets values > 1 to 0
    for i in (1, 2, 3):
        _write(root / "Images" / f"{i:05d}.png", _photo(i))
        _write(root / "Labels" / f"{i:05d}.png", label)
    select = tmp_path / "data" / "select_data"
    select.mkdir()
    (select / "eg1800_train.txt").write_text("00001.png\n00002.png\n")
    (select / "eg1800_test.txt").write_text("00003.png\n")
    ds = from_eg1800(root)
    assert ds[0].decoder == "index01"
    _, mask = ds.load(0)
    np.testing.assert_array_equal(mask, _square_mask(level=1).astype(np.float32))
    assert [s.image.name for s in ds.filter(split="test")] == ["00003.png"]


def test_eg1800_portraitnet_layout_rejects_0_255_labels(tmp_path):
    root = tmp_path / "EG1800"
    _write(root / "Images" / "00001.png", _photo())
    _write(root / "Labels" / "00001.png", _square_mask())
    with pytest.raises(DatasetError, match=r"00001\.png: no pixel is 1"):
        validate(from_eg1800(root))


def test_eg1800_extportraitseg_layout_uses_gt_200(tmp_path):
    root = tmp_path / "Portrait"
    label = _square_mask()
    label[20, 0], label[20, 1] = 210, 190  # > 200 is person, 190 is not
    for i in (1, 2):
        _write(root / "images_data_crop" / f"{i:05d}.jpg", _photo(i))
        _write(root / "GT_png" / f"{i:05d}_mask.png", label)
    (root / "train.txt").write_text("1\n")
    (root / "val.txt").write_text("2\n")
    ds = from_eg1800(root)
    _, mask = ds.load(1)
    assert mask[20, 0] == 1 and mask[20, 1] == 0 and mask[5, 10] == 1 and mask.sum() == 8 * 12 + 1
    assert dict(ds[1].meta) == {"split": "val"}


def _bitmap_object(patch_alpha: np.ndarray, origin: tuple[int, int]) -> dict:
    rgba = np.zeros(patch_alpha.shape + (4,), np.uint8)
    rgba[:, :, 3] = patch_alpha
    png = cv2.imencode(".png", rgba)[1].tobytes()
    return {"classTitle": "person_bmp", "geometryType": "bitmap",
            "bitmap": {"data": base64.b64encode(zlib.compress(png)).decode(), "origin": list(origin)}}


def _supervisely(root: Path) -> Path:
    polygon = {"classTitle": "person_poly", "geometryType": "polygon",
               "points": {"exterior": [[2, 2], [15, 2], [15, 15], [2, 15]],
                          "interior": [[[6, 6], [10, 6], [10, 10], [6, 10]]]}}
    neutral = {"classTitle": "neutral", "geometryType": "polygon",
               "points": {"exterior": [[7, 7], [9, 7], [9, 9], [7, 9]], "interior": []}}
    patch = np.zeros((4, 5), np.uint8)
    patch[1:3, 1:4] = 255
    annotation = {"size": {"height": H, "width": W},
                  "objects": [polygon, neutral, _bitmap_object(patch, (20, 18))]}
    _write(root / "ds1" / "img" / "a.jpg", _photo())
    (root / "ds1" / "ann").mkdir()
    (root / "ds1" / "ann" / "a.jpg.json").write_text(json.dumps(annotation))  # <file>.json release
    _write(root / "ds2" / "img" / "b.png", _photo(1))
    (root / "ds2" / "ann").mkdir()
    (root / "ds2" / "ann" / "b.json").write_text(json.dumps({"size": {"height": H, "width": W},
                                                             "objects": [polygon]}))  # <stem>.json release
    return root


def test_supervisely_polygon_hole_neutral_and_bitmap(tmp_path):
    ds = from_supervisely(_supervisely(tmp_path / "supervisely"))
    assert [dict(s.meta)["subset"] for s in ds] == ["ds1", "ds2"]
    _, mask = ds.load(0)
    assert mask[3, 3] == 1 and mask[14, 14] == 1  # inside the exterior
    assert mask[7, 7] == 1  # inside the hole, but the neutral object covers it: one object's hole spares another
    assert mask[6, 9] == 0 and mask[10, 7] == 0  # rest of the hole (its boundary is cleared by fillPoly)
    assert mask[20, 0] == 0 and mask[16, 16] == 0  # outside
    expected_bitmap = np.zeros((4, 5))
    expected_bitmap[1:3, 1:4] = 1
    np.testing.assert_array_equal(mask[18:22, 20:25], expected_bitmap)
    _, mask_b = ds.load(1)
    assert mask_b[7, 7] == 0 and mask_b[3, 3] == 1


def test_matting_human_reads_channel_3(tmp_path):
    root = tmp_path / "matting_human_half"
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[:, :, :3] = 200  # colour must be ignored
    rgba[:, :, 3] = np.arange(W, dtype=np.uint8)[None] * 7
    _write(root / "clip_img" / "1803151818" / "clip_00000000" / "1803151818-00000003.jpg", _photo())
    _write(root / "matting" / "1803151818" / "matting_00000000" / "1803151818-00000003.png", rgba)
    (root / "clip_img" / "1803151818" / "clip_00000000" / "._1803151818-00000003.jpg").write_bytes(b"junk")
    ds = from_matting_human(root)
    assert len(ds) == 1 and dict(ds[0].meta) == {"group": "1803151818"}
    _, alpha = ds.load(0)
    np.testing.assert_allclose(alpha, np.tile(np.arange(W) * 7 / 255, (H, 1)), atol=1e-6)


def test_figaro_pbm_white_is_hair(tmp_path):
    root = tmp_path / "Figaro1k"
    _write(root / "Original" / "Training" / "Frame00160-org.jpg", _photo())
    _write(root / "GT" / "Training" / "Frame00160-gt.pbm", _square_mask())  # OpenCV writes binary P4
    _write(root / "Original" / "Testing" / "Frame00002-org.jpg", _photo(1, 2, 3))
    # Hand-written ASCII P1: in PBM 1 is black, so the 0 in the middle is white, i.e. hair.
    (root / "GT" / "Testing").mkdir()
    (root / "GT" / "Testing" / "Frame00002-gt.pbm").write_text("P1\n3 2\n1 0 1\n1 1 1\n")
    ds = from_figaro(root)
    assert [dict(s.meta) for s in ds] == [{"split": "test", "style": "straight"},
                                          {"split": "train", "style": "wavy"}]
    np.testing.assert_array_equal(ds.load(0)[1], [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(ds.load(1)[1], _square_mask(level=1))


def _celeba(root: Path) -> Path:
    _write(root / "CelebA-HQ-img" / "0.jpg", _photo(0, 64, 64))
    _write(root / "CelebA-HQ-img" / "2001.jpg", _photo(1, 64, 64))  # bald: no hair file
    mask = np.zeros((32, 32), np.uint8)
    mask[:8, :16] = 255
    _write(root / "CelebAMask-HQ-mask-anno" / "0" / "00000_hair.png", mask)
    _write(root / "CelebAMask-HQ-mask-anno" / "0" / "00000_skin.png", 255 - mask)
    return root


def test_celeba_hair_is_resized_nearest_and_missing_means_no_hair(tmp_path):
    ds = from_celeba_hair(_celeba(tmp_path / "CelebAMask-HQ"))
    assert [s.decoder for s in ds] == ["celeba_hair", "empty"]
    _, mask = ds.load(0)
    expected = np.zeros((64, 64), np.float32)
    expected[:16, :32] = 1
    np.testing.assert_array_equal(mask, expected)
    assert ds.load(1)[1].shape == (64, 64) and ds.load(1)[1].max() == 0
    with pytest.raises(DatasetError, match="2001.jpg: image without a label"):
        from_celeba_hair(tmp_path / "CelebAMask-HQ", missing_as_empty=False)


@pytest.mark.parametrize("make, expected", [
    (lambda p: _folder(p), "folder"),
    (lambda p: _supervisely(p), "supervisely"),
    (lambda p: _celeba(p), "celeba_hair"),
])
def test_open_dataset_detects_the_layout(tmp_path, make, expected):
    ds = open_dataset(make(tmp_path / "root"))
    assert len(ds) >= 1 and {s.decoder for s in ds} <= {"folder": {"gray"}, "supervisely": {"supervisely"},
                                                        "celeba_hair": {"celeba_hair", "empty"}}[expected]


def test_open_dataset_rejects_unknown_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError, match="cannot tell the dataset format"):
        open_dataset(tmp_path)
    with pytest.raises(ValueError, match="unknown dataset format"):
        open_dataset(tmp_path, format="coco")


# --- split ---------------------------------------------------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_sized(tmp_path):
    ds = from_folder(_folder(tmp_path / "ds", n=10))
    first, second = ds.split(0.7, seed=3)
    again, _ = ds.split(0.7, seed=3)
    assert len(first) == 7 and len(second) == 3 and first.samples == again.samples
    assert set(first.samples).isdisjoint(second.samples) and set(first.samples) | set(second.samples) == set(ds)
    assert ds.split(0.7, seed=4)[0].samples != first.samples
    with pytest.raises(ValueError):
        ds.split(1.0)


# --- bad inputs ----------------------------------------------------------------------------------------------------

def test_unpaired_files_raise_naming_each_file(tmp_path):
    root = _folder(tmp_path / "ds")
    _write(root / "images" / "lonely.jpg", _photo())
    _write(root / "masks" / "orphan.png", _square_mask())
    with pytest.raises(DatasetError) as raised:
        from_folder(root)
    assert "lonely.jpg: image without a label" in str(raised.value)
    assert "orphan.png: label without an image" in str(raised.value)
    assert len(raised.value.problems) == 2


def test_skip_bad_reader_drops_warns_and_counts(tmp_path):
    root = _folder(tmp_path / "ds")
    _write(root / "images" / "lonely.jpg", _photo())
    with pytest.warns(UserWarning, match="lonely.jpg"):
        ds = from_folder(root, skip_bad=True)
    assert len(ds) == 3
    report = validate(ds)
    assert report.skipped == 1 and report.checked == 3 and "lonely.jpg" in report.problems[0]


def test_empty_folder_raises(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match="no image / label pairs found"):
        from_folder(tmp_path)
    with pytest.raises(DatasetError, match="missing"):
        from_folder(tmp_path, labels="alpha")


def test_missing_root_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        from_folder(tmp_path / "nowhere")


BAD_CASES = {  # case -> (bad file, phrase of the message)
    "unreadable image": ("s1.jpg", "not a readable image"),
    "truncated jpeg": ("s1.jpg", "truncated or corrupt JPEG"),
    "empty image file": ("s1.jpg", "empty file"),
    "truncated png label": ("s1.png", "not a readable image"),
    "size mismatch": ("s1.png", f"label is {W}x{H + 2} but its image is {W}x{H}"),
    "soft values in a mask": ("s1.png", "between 33 and 222"),
    "class-index map": ("s1.png", "neither a 0/1 nor a 0/255 mask"),
}


def _break(root: Path, case: str) -> None:
    """Spoil sample s1 of a 3-sample masks folder in one way."""
    image, mask = root / "images" / "s1.jpg", root / "masks" / "s1.png"
    if case == "unreadable image":
        image.write_bytes(b"this is not a JPEG")
    elif case == "truncated jpeg":
        image.write_bytes(image.read_bytes()[:-200])
    elif case == "empty image file":
        image.write_bytes(b"")
    elif case == "truncated png label":
        mask.write_bytes(mask.read_bytes()[:-20])
    elif case == "size mismatch":
        _write(mask, _square_mask(h=H + 2))
    elif case == "soft values in a mask":
        _write(mask, np.random.default_rng(0).integers(0, 256, (H, W), dtype=np.uint8))
    elif case == "class-index map":
        _write(mask, (np.arange(H * W) % 19).astype(np.uint8).reshape(H, W))


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_validate_raises_naming_the_bad_file(tmp_path, case):
    root = _folder(tmp_path / "ds")
    _break(root, case)
    bad, phrase = BAD_CASES[case]
    ds = from_folder(root)
    with pytest.raises(DatasetError) as raised:
        validate(ds)
    assert len(raised.value.problems) == 1
    assert bad in raised.value.problems[0] and phrase in raised.value.problems[0]
    with pytest.raises(DatasetError, match=bad):
        ds.load(1)


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_validate_skip_bad_drops_warns_and_counts(tmp_path, case):
    root = _folder(tmp_path / "ds")
    _break(root, case)
    with pytest.warns(UserWarning, match=BAD_CASES[case][0]):
        report = validate(from_folder(root), skip_bad=True)
    assert report.skipped == 1 and report.checked == 3 and len(report.dataset) == 2
    assert [s.image.stem for s in report.dataset] == ["s0", "s2"]


def test_validate_lists_every_bad_file(tmp_path):
    root = _folder(tmp_path / "ds", n=4)
    (root / "images" / "s0.jpg").write_bytes(b"garbage")
    _write(root / "masks" / "s3.png", _square_mask(w=W + 1))
    with pytest.raises(DatasetError) as raised:
        validate(from_folder(root))
    message = str(raised.value)
    assert "2 of 4 samples are bad" in message and "s0.jpg" in message and "s3.png" in message


def test_all_bad_with_skip_bad_still_raises(tmp_path):
    root = _folder(tmp_path / "ds", n=1)
    (root / "images" / "s0.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="no usable sample"):
        validate(from_folder(root), skip_bad=True)


def test_jpeg_truncation_check_ignores_thumbnails_and_trailers():
    data = cv2.imencode(".jpg", _photo(0, 64, 64))[1].tobytes()
    assert jpeg_is_complete(data) and jpeg_is_complete(data + b"phone trailer \xff\xd9 junk")
    thumbnail = b"\xff\xd8" + b"\x00" * 10 + b"\xff\xd9"
    with_app1 = data[:2] + b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail + data[2:]
    assert jpeg_is_complete(with_app1)
    assert not jpeg_is_complete(with_app1[:len(with_app1) // 2])  # the thumbnail's EOI must not count
    assert not jpeg_is_complete(data[:-2])


def test_rgba_label_without_alpha_channel_raises(tmp_path):
    root = tmp_path / "mh"
    _write(root / "clip_img" / "g" / "clip_0" / "x.jpg", _photo())
    _write(root / "matting" / "g" / "matting_0" / "x.png", _photo())  # 3 channels
    with pytest.raises(DatasetError, match=r"x\.png: has 3 channel"):
        validate(from_matting_human(root))


@pytest.mark.parametrize("spoil, match", [
    (lambda ann: "{not json", "cannot decode"),
    (lambda ann: json.dumps({**ann, "objects": [{"classTitle": "car", "points": {"exterior": []}}]}),
     "unknown class 'car'"),
    (lambda ann: json.dumps({**ann, "size": {"height": H + 1, "width": W}}), "annotation size"),
])
def test_supervisely_bad_annotation_raises_naming_the_json(tmp_path, spoil, match):
    root = _supervisely(tmp_path / "sv")
    path = root / "ds2" / "ann" / "b.json"
    path.write_text(spoil(json.loads(path.read_text())))
    with pytest.raises(DatasetError, match=rf"b\.json: .*{match}"):
        validate(from_supervisely(root))


def test_eg1800_list_naming_a_missing_image_raises(tmp_path):
    root = tmp_path / "Portrait"
    _write(root / "images_data_crop" / "00001.jpg", _photo())
    _write(root / "GT_png" / "00001_mask.png", _square_mask())
    (root / "train.txt").write_text("1\n7\n")
    with pytest.raises(DatasetError, match=r"train\.txt: lists 7"):
        from_eg1800(root)


def test_readers_do_not_import_tensorflow():
    code = "import sys, portrait_sdk.data; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- real data -----------------------------------------------------------------------------------------------------

def test_shared_portrait_val_filters_by_label_source(shared_dir):
    ds = open_dataset(shared_dir / "datasets" / "portrait" / "val")
    teacher, service, manual = (ds.filter(label_source=s) for s in ("teacher", "service", "manual"))
    assert ds[0].label_kind == "alpha" and len(teacher) + len(service) + len(manual) == len(ds) == 275
    assert (len(teacher), len(service), len(manual)) == (162, 15, 98)  # celeb + figaro; vikram; ccp + coco
    assert {dict(s.meta)["source"] for s in manual} == {"ccp", "coco"}
    report = validate(service)
    assert report.skipped == 0 and report.checked == 15
    image, label = service.load(0)
    assert image.shape[:2] == label.shape and set(np.unique(label)) <= {0.0, 1.0}  # service masks are binary
