"""Faulty sources for the preview (portrait_sdk.reliability.streams, one case per kind here; the full run is
``python -m portrait_sdk.reliability``): truncated, overwritten, empty and non-video files, a camera unplugged
mid-stream or coming back, a camera changing frame size -- a clear message, no crash, and every readable frame kept."""

from __future__ import annotations

from tiny_models import model_folder

from portrait_sdk.reliability.streams import CAMERA_KINDS, FILE_KINDS, fuzz_streams


def test_faulty_sources_end_with_a_message_and_keep_what_could_be_read(tmp_path_factory, tmp_path):
    model = model_folder(tmp_path_factory) / "tiny_portrait.tflite"
    result = fuzz_streams(len(FILE_KINDS + CAMERA_KINDS), seed=5, folder=tmp_path, model=model)
    assert not result.failures, result.failures
    table = result.by_kind()
    assert set(table) == set(FILE_KINDS + CAMERA_KINDS)
    assert all(set(table[kind]) == {"kept running"} for kind in CAMERA_KINDS)
