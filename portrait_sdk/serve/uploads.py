"""Uploaded images: the request body read within a byte limit, the image taken out of a multipart form, its format
and pixel count checked from the header before anything is decoded, then decoded to RGB.

The multipart form is parsed here with the standard library (``email`` for the part headers) rather than with
python-multipart, which FastAPI's ``UploadFile`` needs but the SDK does not depend on; reading the body ourselves
also lets the byte limit stop an upload while it streams in. Every problem is an ``HTTPException`` with a 4xx status
and a message that says what to send instead.
"""

from __future__ import annotations

import asyncio
import email.message
import email.parser
import email.policy
import struct
from dataclasses import dataclass

import cv2
import numpy as np
from fastapi import HTTPException, Request

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# JPEG start-of-frame markers (they carry the image size): C0..CF except DHT (C4), JPG (C8) and DAC (CC).
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Part content types accepted for an image field (the bytes are sniffed anyway: PNG or JPEG).
IMAGE_PART_TYPES = ("image/", "application/octet-stream")


@dataclass(frozen=True)
class UploadLimits:
    """What one request may carry: the whole body in bytes, each image's width x height, and the seconds the body
    may take to arrive (a stalled or trickling upload, slow-loris style, is answered 408 instead of held open)."""

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    body_timeout_s: float = 60.0

    def __post_init__(self):
        if self.max_bytes < 1 or self.max_pixels < 1 or not self.body_timeout_s > 0:
            raise ValueError(f"upload limits must be positive, got {self}")


@dataclass(frozen=True)
class FormPart:
    content_type: str | None  # as declared by the client, None when the part has no Content-Type
    data: bytes


async def read_body(request: Request, limits: UploadLimits) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limits.max_bytes``, or (408) when it has
    not arrived whole within ``limits.body_timeout_s``."""
    max_bytes = limits.max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"upload of {int(declared)} bytes exceeds the limit of {max_bytes} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise HTTPException(413, f"upload exceeds the limit of {max_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPException(408, f"the upload did not arrive within {limits.body_timeout_s:g} s "
                                 f"({size} bytes received)") from None
    return b"".join(chunks)


def _header(name: str, value: str) -> email.message.Message:
    message = email.message.Message()
    message[name] = value
    return message


def parse_form(body: bytes, content_type: str) -> dict[str, FormPart]:
    """The parts of a ``multipart/form-data`` body by field name (415 for another content type, 400 if malformed)."""
    header = _header("content-type", content_type)
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise HTTPException(415, f"expected a multipart/form-data upload with an image in the field 'image', "
                                 f"got Content-Type {content_type or '(none)'!r}")
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    parts = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            return parts
        _, _, rest = chunk.partition(b"\r\n")  # the rest of the delimiter line
        head, separator, data = rest.partition(b"\r\n\r\n")
        if not separator:
            raise HTTPException(400, "malformed multipart body: a part has no blank line after its headers")
        headers = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(head + b"\r\n\r\n")
        name = _header("content-disposition", headers.get("content-disposition", "")).get_param(
            "name", header="content-disposition")
        if isinstance(name, str):
            parts[name] = FormPart(headers.get("content-type"), data)
    raise HTTPException(400, "malformed multipart body: no closing boundary (was the upload cut short?)")


def image_size(data: bytes, field: str) -> tuple[int, int]:
    """(width, height) read from a PNG or JPEG header without decoding (415 for another format, 400 if broken)."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise HTTPException(400, f"field '{field}': broken PNG (no IHDR header)")
        return struct.unpack(">II", data[16:24])
    if data.startswith(JPEG_SIGNATURE):
        return _jpeg_size(data, field)
    raise HTTPException(415, f"field '{field}' is not a PNG or JPEG image "
                             f"({len(data)} bytes starting {data[:8]!r}); only PNG and JPEG are accepted")


def _jpeg_size(data: bytes, field: str) -> tuple[int, int]:
    """Walk the JPEG's marker segments up to the start-of-frame, which holds the height and width."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers have no length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        if marker in JPEG_SOF_MARKERS and position + 9 <= len(data):
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return width, height
        position += 2 + length
    raise HTTPException(400, f"field '{field}': broken or truncated JPEG (no frame header found)")


def decode_image(part: FormPart, field: str, limits: UploadLimits) -> np.ndarray:
    """The part as an RGB uint8 image, after checking its declared type, its format and its pixel count."""
    declared = (part.content_type or "application/octet-stream").lower()
    if not declared.startswith(IMAGE_PART_TYPES):
        raise HTTPException(415, f"field '{field}' has Content-Type {part.content_type!r}; send a PNG or JPEG image")
    width, height = image_size(part.data, field)
    if width == 0 or height == 0:
        raise HTTPException(400, f"field '{field}': the image header says {width}x{height} pixels")
    if width * height > limits.max_pixels:
        raise HTTPException(413, f"field '{field}': {width}x{height} = {width * height} pixels exceeds the limit of "
                                 f"{limits.max_pixels} pixels")
    image = cv2.imdecode(np.frombuffer(part.data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise HTTPException(400, f"field '{field}': the image could not be decoded (truncated or corrupt)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def form_image(form: dict[str, FormPart], field: str, limits: UploadLimits, required: bool = True
               ) -> np.ndarray | None:
    """The image in ``field`` of the form, or None when it is absent and not ``required`` (400 when it is)."""
    if field not in form:
        if required:
            raise HTTPException(400, f"the upload has no field '{field}'; send the image as multipart/form-data "
                                     f"field '{field}' (fields found: {sorted(form) or 'none'})")
        return None
    return decode_image(form[field], field, limits)
