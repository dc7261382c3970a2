"""The byte-level parsers under hypothesis: the multipart form parser, the PNG / JPEG header reader and the image
decoder of the service, and the dataset readers' JPEG completeness check and decoder. Any bytes end in a 4xx
HTTPException (the service) or a DatasetError naming the file (the readers), or in a valid result."""

from __future__ import annotations

import cv2
import numpy as np
from fastapi import HTTPException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portrait_sdk.data import DatasetError, jpeg_is_complete, read_image
from portrait_sdk.reliability.fuzz import png_with_size
from portrait_sdk.serve.uploads import FormPart, UploadLimits, decode_image, image_size, parse_form

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PNG = cv2.imencode(".png", np.full((6, 7, 3), 90, np.uint8))[1].tobytes()
JPEG = cv2.imencode(".jpg", np.full((6, 7, 3), 90, np.uint8))[1].tobytes()
headers = st.sampled_from([b"", PNG[:8], PNG[:33], JPEG[:2], JPEG[:20], b"\xff\xd8\xff\xc0"])
spoilt = st.one_of(st.builds(lambda h, b: h + b, headers, st.binary(max_size=600)),
                   st.builds(lambda cut: PNG[:cut], st.integers(0, len(PNG))),
                   st.builds(lambda cut: JPEG[:cut], st.integers(0, len(JPEG))),
                   st.builds(lambda at, junk: JPEG[:at] + junk + JPEG[at + len(junk):], st.integers(0, len(JPEG)),
                             st.binary(min_size=1, max_size=8)),
                   st.builds(png_with_size, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)))


def _is_4xx(error: HTTPException) -> bool:
    return 400 <= error.status_code < 500 and bool(error.detail)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["multipart/form-data; boundary=b", "multipart/form-data", "",
                                                 "text/plain", "multipart/form-data; boundary="]))
def test_any_body_parses_to_parts_or_a_4xx(body, content_type):
    framed = b"--b\r\n" + body if content_type.endswith("=b") else body
    try:
        parts = parse_form(framed, content_type)
    except HTTPException as error:
        assert _is_4xx(error), error
    else:
        assert all(isinstance(part, FormPart) for part in parts.values())


@FUZZ
@given(spoilt)
def test_any_upload_decodes_or_gets_a_4xx(data):
    try:
        width, height = image_size(data, "image")
        image = decode_image(FormPart("image/png", data), "image", UploadLimits(max_pixels=10_000))
    except HTTPException as error:
        assert _is_4xx(error), error
    else:
        assert image.shape == (height, width, 3) and image.dtype == np.uint8


@FUZZ
@given(st.builds(lambda b: JPEG[:2] + b, st.binary(max_size=600)) | spoilt)
def test_jpeg_completeness_check_never_raises(data):
    assert isinstance(jpeg_is_complete(data), bool)


@FUZZ
@given(spoilt)
def test_any_dataset_file_decodes_or_names_itself(tmp_path, data):
    path = tmp_path / "sample.png"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except DatasetError as error:
        assert str(path) in str(error)
    else:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
