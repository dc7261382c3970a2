"""Fuzzed inputs for the dataset readers and the model loader: every case must end in a clear error naming the bad
file (for datasets also a counted skip with ``skip_bad``), or be read correctly -- never a crash, a hang, an
unexpected exception type or a silently wrong result.

Cases are generated from a seed (``reader_cases(n, seed, folder)``, ``model_cases(...)``): files truncated at random
offsets, zero bytes, random bytes behind a valid header, headers declaring huge sizes, 16-bit / palette / RGBA
masks, EXIF-rotated photos, labels of another size; model files truncated, with a wrong identifier or random bytes,
without card or metadata, and cards lying about the model. Each case runs in a child process
(:mod:`portrait_sdk.reliability.isolate`); the outcome is one of

- ``error``: the expected exception, its message naming the bad file (and, datasets, ``skip_bad`` skipped 1);
- ``read``: accepted, and what was read equals what the file holds (a PNG cut inside its trailing chunk);
- anything else is a failure: ``wrong`` (accepted but different), ``unnamed`` (an error not naming the file),
  ``unexpected`` (another exception type), ``crash``, ``hang``.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from portrait_sdk.reliability.isolate import run_isolated

OK_OUTCOMES = ("error", "read")
H, W = 40, 48  # the fuzzed pictures: not square, so that a 90-degree rotation shows as a size mismatch


@dataclass(frozen=True)
class FuzzResult:
    """Outcomes of one fuzz run: ``cases`` (one dict per case: name, kind, outcome, detail, seconds)."""

    cases: list[dict]
    ok_outcomes: tuple[str, ...] = OK_OUTCOMES

    @property
    def failures(self) -> list[dict]:
        return [case for case in self.cases if case["outcome"] not in self.ok_outcomes]

    def by_kind(self) -> dict[str, Counter]:
        table: dict[str, Counter] = {}
        for case in self.cases:
            table.setdefault(case["kind"], Counter())[case["outcome"]] += 1
        return table


# --- byte-level builders -------------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(rows: np.ndarray, color_type: int, depth: int = 8, palette: np.ndarray | None = None) -> bytes:
    """A PNG written by hand (OpenCV writes no palette PNGs): ``rows`` (H, W*samples) uint8 of already packed
    samples, filter type 0 on every row."""
    height = rows.shape[0]
    width = rows.shape[1] // {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type] // (depth // 8)
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    chunks = [_png_chunk(b"IHDR", header)]
    if palette is not None:
        chunks.append(_png_chunk(b"PLTE", palette.astype(np.uint8).tobytes()))
    chunks += [_png_chunk(b"IDAT", zlib.compress(raw)), _png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def png_with_size(width: int, height: int) -> bytes:
    """A PNG header declaring ``width`` x ``height`` RGB pixels with one small compressed row behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
            + _png_chunk(b"IEND", b""))


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with the size in its start-of-frame header replaced."""
    data = bytearray(jpeg)
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC1, 0xC2):
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    data[pos + 5:pos + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an APP1 EXIF segment holding only the Orientation tag (0x0112)."""
    tiff = b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    payload = b"Exif\x00\x00" + tiff + struct.pack(">I", 0)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


DISPLAY_ROTATION = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
"""EXIF orientation -> the rotation that shows the stored pixels upright."""


def _encode(ext: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok, ext
    return data.tobytes()


# --- dataset cases -------------------------------------------------------------------------------------------------

def _picture(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(BGR photo, 0/255 mask): a disc on smooth colour."""
    image = cv2.resize(rng.integers(0, 256, (4, 5, 3), np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (int(rng.integers(12, W - 12)), int(rng.integers(12, H - 12))), int(rng.integers(5, 11)), 255, -1)
    return image, mask


def _gray_of(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_BGR2GRAY).reshape(-1)


def _reader_case(kind: str, rng: np.random.Generator) -> tuple[dict[str, bytes], str, dict | None]:
    """(files {"image.<ext>": bytes, "label.<ext>": bytes}, the bad file's name, what must be read if accepted:
    {"image": BGR, "label": float 0/1 or alpha} or None when the file must be refused)."""
    image, mask = _picture(rng)
    png_image, jpeg_image, png_mask = _encode(".png", image), _encode(".jpg", image), _encode(".png", mask)
    truth = {"image": image, "label": (mask >= 128).astype(np.float32)}
    if kind == "truncated image":
        data, ext = (png_image, ".png") if rng.random() < 0.5 else (jpeg_image, ".jpg")
        cut = data[:int(rng.integers(1, len(data)))]
        original = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return {f"image{ext}": cut, "label.png": png_mask}, f"image{ext}", {**truth, "image": original}
    if kind == "truncated label":
        return ({"image.png": png_image, "label.png": png_mask[:int(rng.integers(1, len(png_mask)))]}, "label.png",
                truth)
    if kind == "zero-byte file":
        bad = "image.png" if rng.random() < 0.5 else "label.png"
        return {"image.png": png_image, "label.png": png_mask, bad: b""}, bad, None
    if kind == "random bytes behind a valid header":
        header = (png_image[:33], jpeg_image[:20], b"BM")[int(rng.integers(0, 3))]  # PNG to IHDR, JPEG, BMP
        data = header + rng.bytes(int(rng.integers(0, 4000)))
        bad = "image.png" if rng.random() < 0.5 else "label.png"
        return {"image.png": png_image, "label.png": png_mask, bad: data}, bad, None
    if kind == "huge declared size":
        top = 1_000_000 if rng.random() < 0.5 else 2**31 - 1  # libpng refuses sides over 10**6 by itself
        width, height = (int(v) for v in rng.integers(20_000, top, 2))
        if rng.random() < 0.5:
            return {"image.png": png_with_size(width, height), "label.png": png_mask}, "image.png", None
        data = jpeg_with_size(jpeg_image, min(width, 65535), min(height, 65535))
        return {"image.jpg": data, "label.png": png_mask}, "image.jpg", None
    if kind == "16-bit mask":
        wide = mask.astype(np.uint16) * 257
        return {"image.png": png_image, "label.png": _encode(".png", wide)}, "label.png", truth
    if kind == "palette mask":
        colors = rng.integers(0, 256, (2, 3))
        colors[0] = (0, 0, 0) if rng.random() < 0.7 else colors[0]
        gray = _gray_of(colors[:, ::-1])  # PLTE entries are RGB
        if np.any(np.abs(gray[:, None] - np.array([32, 128, 223])) < 8):  # a level at a threshold: rounding decides
            colors[:] = ((0, 0, 0), (255, 255, 255))
            gray = np.array([0, 255])
        label = png_file((mask >= 128).astype(np.uint8), color_type=3, palette=colors)
        levels = gray[(mask >= 128).astype(int)]
        return {"image.png": png_image, "label.png": label}, "label.png", {**truth, "label": (levels >= 128).astype(
            np.float32) if levels.max() > 1 else levels.astype(np.float32)}
    if kind == "RGBA mask":
        color = [(0, 0, 0), (255, 255, 255), tuple(rng.integers(0, 256, 3))][int(rng.choice(3, p=[0.5, 0.25, 0.25]))]
        rgba = np.dstack([np.full((H, W, 3), color, np.uint8), mask])
        return {"image.png": png_image, "label.png": _encode(".png", rgba)}, "label.png", None
    if kind.startswith("EXIF-rotated photo"):
        orientation = int(rng.choice([6, 8])) if kind.endswith("unrotated label") else int(rng.choice([3, 6, 8]))
        stored = cv2.imdecode(np.frombuffer(jpeg_image, np.uint8), cv2.IMREAD_COLOR)
        if kind.endswith("unrotated label"):  # the label of the stored pixels: a 90-degree turn is a size mismatch
            return ({"image.jpg": with_exif_orientation(jpeg_image, orientation), "label.png": png_mask}, "label.png",
                    None)
        label = cv2.rotate(mask, DISPLAY_ROTATION[orientation])  # drawn on the photo as shown
        return ({"image.jpg": with_exif_orientation(jpeg_image, orientation), "label.png": _encode(".png", label)},
                "label.png", {"image": cv2.rotate(stored, DISPLAY_ROTATION[orientation]),
                              "label": (label >= 128).astype(np.float32)})
    if kind == "label of another size":
        other = cv2.resize(mask, (W + int(rng.integers(1, 9)), H + int(rng.integers(-8, 9))),
                           interpolation=cv2.INTER_NEAREST)
        return {"image.png": png_image, "label.png": _encode(".png", other)}, "label.png", None
    if kind == "16-bit RGBA matte":  # AISegment-style matte, decoder "rgba_alpha"
        alpha = cv2.GaussianBlur(mask, (7, 7), 0).astype(np.uint16) * 257
        rgba = np.dstack([image.astype(np.uint16) * 257, alpha])
        return ({"image.png": png_image, "label.png": _encode(".png", rgba)}, "label.png",
                {"image": image, "label": alpha.astype(np.float32) / 65535})
    raise ValueError(f"unknown reader fuzz kind {kind!r}")


READER_KINDS = ("truncated image", "truncated label", "zero-byte file", "random bytes behind a valid header",
                "huge declared size", "16-bit mask", "palette mask", "RGBA mask", "EXIF-rotated photo",
                "EXIF-rotated photo, unrotated label", "label of another size", "16-bit RGBA matte")
MUST_READ = ("16-bit mask", "EXIF-rotated photo", "16-bit RGBA matte")
"""Kinds that are valid data: refusing them is a failure too."""


def reader_cases(n: int, seed: int, folder: Path) -> list[dict]:
    """``n`` dataset cases (the kinds in turn), their files under ``folder/<index>/``."""
    rng = np.random.default_rng(seed)
    good_image, good_mask = _picture(np.random.default_rng(seed + 1))
    specs = []
    for index in range(n):
        kind = READER_KINDS[index % len(READER_KINDS)]
        files, bad, expect = _reader_case(kind, rng)
        case = folder / f"{index:04d}"
        case.mkdir(parents=True)
        for name, data in {"good.png": _encode(".png", good_image), "good_label.png": _encode(".png", good_mask),
                           **files}.items():
            (case / name).write_bytes(data)
        if expect is not None:
            np.savez(case / "expect.npz", **expect)
        image = next(name for name in files if name.startswith("image"))
        specs.append({"name": f"{kind} #{index}", "kind": kind, "folder": str(case), "image": image,
                      "label": "label.png", "bad": bad, "must_read": kind in MUST_READ,
                      "decoder": "rgba_alpha" if kind == "16-bit RGBA matte" else "gray",
                      "label_kind": "alpha" if kind == "16-bit RGBA matte" else "mask"})
    return specs


def check_reader_case(spec: dict) -> dict:
    """Validate a dataset of [good, the case, good] with and without ``skip_bad``; see the module docstring."""
    import warnings

    from portrait_sdk.data import DatasetError, Sample, SegmentationDataset, validate

    folder = Path(spec["folder"])
    good = Sample(folder / "good.png", folder / "good_label.png", "mask", "gray")
    case = Sample(folder / spec["image"], folder / spec["label"], spec["label_kind"], spec["decoder"])
    dataset = SegmentationDataset([good, case, good], folder, spec["name"])
    bad = folder / spec["bad"]
    try:
        validate(dataset)
    except DatasetError as error:
        if spec["must_read"]:
            return {"outcome": "wrong", "detail": f"valid data refused: {error}"}
        if len(error.problems) != 1 or str(bad) not in error.problems[0]:
            return {"outcome": "unnamed", "detail": str(error)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = validate(dataset, skip_bad=True)
        if report.skipped != 1 or len(report.dataset) != 2:
            return {"outcome": "wrong", "detail": f"skip_bad skipped {report.skipped}, kept {len(report.dataset)}"}
        return {"outcome": "error", "detail": error.problems[0]}
    except Exception as error:  # noqa: BLE001 -- any other exception is the finding
        return {"outcome": "unexpected", "detail": f"{type(error).__name__}: {error}"}
    expect_file = folder / "expect.npz"
    if not expect_file.is_file():
        return {"outcome": "wrong", "detail": "accepted a file that holds no valid image / label"}
    expect = np.load(expect_file)
    image, label = dataset.load(1)
    if not np.array_equal(image, cv2.cvtColor(expect["image"], cv2.COLOR_BGR2RGB)):
        return {"outcome": "wrong", "detail": "the image read differs from the file's pixels"}
    if label.shape != expect["label"].shape or np.abs(label - expect["label"]).max() > 1 / 255:
        return {"outcome": "wrong", "detail": "the label read differs from the file's values"}
    return {"outcome": "read", "detail": "read correctly"}


def fuzz_readers(n: int, seed: int, folder: Path, timeout_s: float = 60.0) -> FuzzResult:
    specs = reader_cases(n, seed, folder)
    results = run_isolated("portrait_sdk.reliability.fuzz:check_reader_case", specs, timeout_s)
    return FuzzResult([{"name": s["name"], "kind": s["kind"], **r} for s, r in zip(specs, results)])


# --- model-file cases ----------------------------------------------------------------------------------------------

MODEL_KINDS = ("truncated model", "zero-byte model", "wrong file identifier", "random bytes behind the identifier",
               "no card and no metadata", "card lying about the input", "card lying about the output",
               "card truncated", "card field of the wrong type")
CARD_FIELDS = (("input", "height"), ("input", "width"), ("input", "channels"), ("input", "mean"), ("input", "std"),
               ("input", "resize"), ("input", "color_order"), ("output", "kind"), ("output", "foreground_channel"),
               ("output", "labels"), ("name",), ("task",), ("input",), ("output",), ("metrics",))
JUNK_VALUES = (None, "abc", -1, 0, 1e9, [], [1, "x"], {}, {"a": 1}, True, "", 3.5)


def _set(card: dict, keys: tuple, value) -> dict:
    card = json.loads(json.dumps(card))
    target = card
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return card


def _model_case(kind: str, rng: np.random.Generator, model: bytes, card: dict) -> tuple[bytes, dict | str | None]:
    """(model bytes, the card: a dict, text, or None for no card file)."""
    if kind == "truncated model":
        return model[:int(rng.integers(1, len(model)))], card
    if kind == "zero-byte model":
        return b"", card
    if kind == "wrong file identifier":
        return model[:4] + rng.bytes(4) + model[8:], card
    if kind == "random bytes behind the identifier":
        return model[:8] + rng.bytes(int(rng.integers(0, 20_000))), card
    if kind == "no card and no metadata":
        return model, None
    if kind == "card lying about the input":
        keys = [("input", "height"), ("input", "width"), ("input", "channels")][int(rng.integers(0, 3))]
        value = card[keys[0]][keys[1]]
        return model, _set(card, keys, value + int(rng.choice([-1, 1])) * int(rng.integers(1, 4)))
    if kind == "card lying about the output":
        options = [(("output", "kind"), "sigmoid"), (("output", "kind"), "linear"),
                   (("output", "foreground_channel"), int(rng.integers(2, 9))), (("output", "labels"), ["only"])]
        keys, value = options[int(rng.integers(0, len(options)))]
        return model, _set(card, keys, value)
    if kind == "card truncated":
        text = json.dumps(card)
        return model, text[:int(rng.integers(0, len(text) - 1))]
    if kind == "card field of the wrong type":
        keys = CARD_FIELDS[int(rng.integers(0, len(CARD_FIELDS)))]
        original = card
        for key in keys:
            original = original[key]
        junk = [value for value in JUNK_VALUES if type(value) is not type(original)]  # 0 is no lie of type for 1
        return model, _set(card, keys, junk[int(rng.integers(0, len(junk)))])
    raise ValueError(f"unknown model fuzz kind {kind!r}")


def model_cases(n: int, seed: int, folder: Path, model: Path) -> list[dict]:
    """``n`` cases spoiling ``model`` (a ``.tflite`` without metadata, with its ``.json`` card) or its card."""
    rng = np.random.default_rng(seed)
    data, card = model.read_bytes(), json.loads(model.with_suffix(".json").read_text())
    specs = []
    for index in range(n):
        kind = MODEL_KINDS[index % len(MODEL_KINDS)]
        spoilt, spoilt_card = _model_case(kind, rng, data, card)
        path = folder / f"{index:04d}" / "model.tflite"
        path.parent.mkdir(parents=True)
        path.write_bytes(spoilt)
        if spoilt_card is not None:
            path.with_suffix(".json").write_text(spoilt_card if isinstance(spoilt_card, str)
                                                 else json.dumps(spoilt_card))
        specs.append({"name": f"{kind} #{index}", "kind": kind, "model": str(path), "reference": str(model)})
    return specs


def check_model_case(spec: dict) -> dict:
    """Open the model with the runtime and segment a frame; compare with the unspoilt model if it opens."""
    from portrait_sdk.runtime import Segmenter

    frame = cv2.resize(np.random.default_rng(0).integers(0, 256, (4, 5, 3), np.uint8), (W, H))
    try:
        alpha = Segmenter.from_file(spec["model"], num_threads=1).segment(frame)
    except (ValueError, FileNotFoundError) as error:
        if spec["model"] not in str(error) and str(Path(spec["model"]).with_suffix(".json")) not in str(error):
            return {"outcome": "unnamed", "detail": str(error)}
        return {"outcome": "error", "detail": str(error)}
    except Exception as error:  # noqa: BLE001 -- any other exception is the finding
        return {"outcome": "unexpected", "detail": f"{type(error).__name__}: {error}"}
    reference = Segmenter.from_file(spec["reference"], num_threads=1).segment(frame)
    if not np.allclose(alpha, reference, atol=1e-6):
        return {"outcome": "wrong", "detail": f"opened, but the mask differs by up to {np.abs(alpha - reference).max():.3g}"}
    return {"outcome": "read", "detail": "opened, same mask as the unspoilt model"}


def fuzz_models(n: int, seed: int, folder: Path, model: Path, timeout_s: float = 60.0) -> FuzzResult:
    specs = model_cases(n, seed, folder, model)
    results = run_isolated("portrait_sdk.reliability.fuzz:check_model_case", specs, timeout_s)
    return FuzzResult([{"name": s["name"], "kind": s["kind"], **r} for s, r in zip(specs, results)])
