"""The HTTP service against a real server on loopback: every endpoint's answer equals the Python runtime's on the
same image, every kind of bad request gets a 4xx JSON error (and the server keeps serving), and a bounded load of
concurrent requests is answered right without the server's memory growing."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from live_server import multipart, running_server
from tiny_models import model_folder

from portrait_sdk.effects import EFFECTS
from portrait_sdk.runtime import Segmenter

UPLOAD_LIMIT = 300_000  # bytes: small, so that the over-the-limit test sends little
PIXEL_LIMIT = 200_000


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def decode(data: bytes, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert image is not None, f"not an image: {data[:40]!r}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def picture(seed: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A smooth random picture (blobs of colour), so that the tiny model's mask is not constant."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 5, 3), np.uint8)
    return cv2.resize(small, size[::-1], interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """tiny_portrait and tiny_hair: red is foreground, blue background (tests/tiny_models.py)."""
    return model_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(models, "--max-upload-bytes", str(UPLOAD_LIMIT), "--max-pixels", str(PIXEL_LIMIT),
                        log=log) as live:
        yield live


@pytest.fixture(scope="module")
def runtime(models):
    return Segmenter.from_file(models / "tiny_portrait.tflite")


def test_models_listing_and_model_files(server, models):
    listing = server.request("/v1/models").json()
    assert listing["default"] == "tiny_portrait"
    assert [m["name"] for m in listing["models"]] == ["tiny_hair", "tiny_portrait"]
    tiny = listing["models"][1]
    assert tiny["card"]["input"]["height"] == 32 and tiny["card"]["task"] == "portrait"
    reply = server.request(tiny["url"])
    assert reply.status == 200 and reply.body == (models / "tiny_portrait.tflite").read_bytes()
    assert server.request("/models/nope.tflite").status == 404


def test_mask_and_matte_match_the_runtime(server, runtime):
    image = picture(0)
    alpha = runtime.segment(image)
    assert 0.02 < np.mean(alpha >= 0.5) < 0.98, "the test image should give a mixed mask"
    reply = server.post_files("/v1/mask", {"image": ("image/png", png(image))})
    assert reply.status == 200 and reply.content_type == "image/png"
    np.testing.assert_array_equal(decode(reply.body), np.where(alpha >= 0.5, 255, 0))
    reply = server.post_files("/v1/matte?model=tiny_portrait", {"image": ("image/png", png(image))})
    assert reply.status == 200 and reply.content_type == "image/png"
    assert np.abs(decode(reply.body).astype(int) - np.rint(alpha * 255)).max() <= 1


def test_refined_matte_differs_from_the_plain_one(server):
    files = {"image": ("image/png", png(picture(1, (96, 128))))}
    plain, refined = server.post_files("/v1/matte", files), server.post_files("/v1/matte?refine=true", files)
    assert plain.status == refined.status == 200
    assert decode(plain.body).shape == decode(refined.body).shape == (96, 128)
    assert not np.array_equal(decode(plain.body), decode(refined.body))


def test_effects_match_the_python_effects(server, runtime):
    image, background = picture(2), picture(3, (20, 30))
    alpha = runtime.segment(image)
    reply = server.post_files("/v1/effect?effect=blur&format=png&strength=0.8", {"image": (None, png(image))})
    assert reply.status == 200 and reply.content_type == "image/png"
    assert np.abs(decode(reply.body).astype(int) - EFFECTS["blur"](image, alpha, strength=0.8)).max() <= 1
    reply = server.post_files("/v1/effect?effect=replace&format=png",
                              {"image": ("image/png", png(image)), "background": ("image/png", png(background))})
    expected = EFFECTS["replace"](image, alpha, background=background)
    assert np.abs(decode(reply.body).astype(int) - expected).max() <= 1
    reply = server.post_files("/v1/effect?effect=replace&format=png&color=%2300ff00", {"image": (None, png(image))})
    expected = EFFECTS["replace"](image, alpha, background=np.array([[[0, 255, 0]]], np.uint8))
    assert np.abs(decode(reply.body).astype(int) - expected).max() <= 1
    reply = server.post_files("/v1/effect?effect=matte", {"image": ("image/jpeg", jpeg(image))})
    assert reply.status == 200 and reply.content_type == "image/jpeg"
    assert decode(reply.body).shape == image.shape
    reply = server.post_files("/v1/effect?effect=hair-color&model=tiny_hair&color=200,0,0&format=png",
                              {"image": (None, png(image))})
    assert reply.status == 200 and decode(reply.body).shape == image.shape


def test_stats(server, runtime):
    image = picture(4, (60, 80))
    reply = server.post_files("/v1/stats", {"image": ("image/jpeg", jpeg(image))})
    assert reply.status == 200, reply.body
    stats = reply.json()
    alpha = runtime.segment(decode(jpeg(image), cv2.IMREAD_COLOR))
    assert stats["model"] == "tiny_portrait" and stats["task"] == "portrait" and (stats["width"], stats["height"]) == (80, 60)
    assert stats["foreground_fraction"] == pytest.approx(np.mean(alpha >= 0.5), abs=1e-6)
    assert stats["mean_alpha"] == pytest.approx(float(alpha.mean()), abs=1e-5)
    assert {"decode", "preprocess", "inference", "postprocess", "total"} <= set(stats["timings_ms"])


def test_openapi_docs_and_demo_page(server):
    schema = server.request("/openapi.json").json()
    for path in ("/v1/mask", "/v1/matte", "/v1/effect", "/v1/stats"):
        assert "multipart/form-data" in schema["paths"][path]["post"]["requestBody"]["content"]
    assert server.request("/docs").status == 200
    page = server.request("/")
    assert page.status == 200 and b'src="/web/demo.js"' in page.body
    script = server.request("/web/demo.js")
    assert script.status == 200 and "javascript" in script.content_type
    bundle = server.request("/vendor/tasks-vision/vision_bundle.mjs")
    if bundle.status == 200:  # installed by `npm ci --prefix web`
        assert "javascript" in bundle.content_type
    else:
        assert bundle.status == 503 and "npm ci" in bundle.json()["detail"]


TRUNCATED_PNG = png(picture(5))[:-40]
TRUNCATED_JPEG = jpeg(picture(5))[:-200]
HUGE_PNG = png(np.zeros((500, 500, 3), np.uint8))  # compresses to little: only the header check catches it


def _form(**files) -> tuple[bytes, str]:
    return multipart(files)


BAD_REQUESTS = {
    # name: (path, body, content type, expected status, words in the error)
    "text file": ("/v1/mask", *_form(image=("text/plain", b"hello")), 415, "Content-Type"),
    "not an image": ("/v1/mask", *_form(image=("application/octet-stream", b"GIF89a" + bytes(100))), 415,
                     "PNG or JPEG"),
    "truncated png": ("/v1/mask", *_form(image=("image/png", TRUNCATED_PNG)), 400, "truncated"),
    "truncated jpeg": ("/v1/stats", *_form(image=("image/jpeg", TRUNCATED_JPEG)), 400, "truncated"),
    "too many pixels": ("/v1/matte", *_form(image=("image/png", HUGE_PNG)), 413, "pixels"),
    "too many bytes": ("/v1/mask", *_form(image=("image/png", bytes(UPLOAD_LIMIT + 1))), 413, "bytes"),
    "json body": ("/v1/mask", b'{"image": "x"}', "application/json", 415, "multipart/form-data"),
    "raw png body": ("/v1/mask", png(picture(6)), "image/png", 415, "multipart/form-data"),
    "no image field": ("/v1/mask", *_form(picture=("image/png", png(picture(6)))), 400, "'image'"),
    "unclosed form": ("/v1/mask", _form(image=("image/png", png(picture(6))))[0][:-40],
                      _form()[1], 400, "boundary"),
    "unknown model": ("/v1/mask?model=nope", *_form(image=("image/png", png(picture(6)))), 404, "nope"),
    "unknown effect": ("/v1/effect?effect=sparkles", *_form(image=("image/png", png(picture(6)))), 422, ""),
    "effect for another task": ("/v1/effect?effect=nails", *_form(image=("image/png", png(picture(6)))), 400,
                                "nails"),
    "replace without background": ("/v1/effect?effect=replace", *_form(image=("image/png", png(picture(6)))),
                                   400, "background"),
    "bad color": ("/v1/effect?effect=replace&color=purple", *_form(image=("image/png", png(picture(6)))), 422,
                  "color"),
    "strength out of range": ("/v1/effect?strength=2", *_form(image=("image/png", png(picture(6)))), 422, ""),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_a_json_4xx_and_the_server_keeps_serving(server, case):
    path, body, content_type, status, words = BAD_REQUESTS[case]
    if case == "unclosed form":  # the boundary of the truncated body, not of a fresh one
        content_type = "multipart/form-data; boundary=" + body[2:34].decode()
    reply = server.request(path, body, content_type)
    assert reply.status == status, reply.body
    assert reply.content_type == "application/json"
    assert words in json.dumps(reply.json()["detail"])
    assert server.post_files("/v1/stats", {"image": ("image/png", png(picture(7)))}).status == 200


def test_bad_models_folder_stops_the_command_with_a_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "portrait_sdk.serve", "--models", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no such models folder" in result.stderr


def test_load_every_answer_right_and_memory_flat(server, runtime):
    """200 requests, 16 at a time, over 4 images and 2 endpoints: each answer is that image's (no mix-ups between
    concurrent requests) and the server's RSS grows < 10 % from after the warm-up to after the load."""
    images = [picture(10 + i, (72, 96)) for i in range(4)]
    expected = [np.rint(runtime.segment(image) * 255) for image in images]
    uploads = [{"image": ("image/png", png(image))} for image in images]

    def check(i: int) -> None:
        k = i % len(images)
        if i % 2:
            stats = server.post_files("/v1/stats", uploads[k]).json()
            assert stats["mean_alpha"] == pytest.approx(float(expected[k].mean()) / 255, abs=3e-3)
        else:
            reply = server.post_files("/v1/matte", uploads[k])
            assert reply.status == 200 and np.abs(decode(reply.body) - expected[k]).max() <= 1

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(check, range(64)))  # warm-up: pools, thread pool and allocator at their working size
        warm = server.rss_kib()
        list(pool.map(check, range(200)))
    loaded = server.rss_kib()
    print(f"server RSS after warm-up {warm / 1024:.1f} MiB, after 200 requests {loaded / 1024:.1f} MiB")
    assert loaded < 1.10 * warm, f"RSS grew from {warm} KiB to {loaded} KiB"
