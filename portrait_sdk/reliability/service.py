"""The HTTP service under test on loopback: its own OpenAPI spec through schemathesis (no 5xx), a bounded load of
segmentation requests (throughput, latency percentiles, errors, resident memory before and after, every answer
checked against the image it was asked about), and abusive uploads (oversized, slow-loris, malformed) that must get
a 4xx JSON answer within a timeout while the service keeps serving others.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Service:
    url: str
    process: subprocess.Popen

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for process {self.process.pid}")

    def post(self, path: str, body: bytes, content_type: str, timeout: float = 60) -> tuple[int, str, bytes]:
        request = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.headers.get("content-type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("content-type", ""), error.read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextmanager
def running_service(models: Path, log: Path, *options: str, startup_s: float = 120) -> Iterator[Service]:
    """``python -m portrait_sdk.serve`` on a free loopback port until the block ends."""
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "portrait_sdk.serve", "--models", str(models), "--host",
                                    LOOPBACK, "--port", str(port), "--log-level", "warning", *options],
                                   stdout=out, stderr=subprocess.STDOUT)
    service = Service(f"http://{LOOPBACK}:{port}", process)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(service.url + "/v1/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not answer within {startup_s:g} s:\n{log.read_text()}") \
                        from None
                time.sleep(0.2)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def multipart(files: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, as a browser or curl -F would send them (field ->
    (part content type or None, bytes))."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, (content_type, data) in files.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'.encode()
        body += f"Content-Type: {content_type}\r\n".encode() if content_type else b""
        body += b"\r\n" + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def picture(seed: int, size: tuple[int, int] = (72, 96)) -> np.ndarray:
    """A smooth random RGB picture, so that masks have edges and differ from one picture to the next."""
    small = np.random.default_rng(seed).integers(0, 256, (4, 5, 3), np.uint8)
    return cv2.resize(small, size[::-1], interpolation=cv2.INTER_CUBIC)


def png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


# --- schemathesis ----------------------------------------------------------------------------------------------------

def schemathesis_run(service: Service, max_examples: int, phases: str = "examples,coverage,fuzzing,stateful",
                     seed: int = 0, timeout_s: float = 600) -> dict:
    """schemathesis over every operation of /openapi.json with the ``not_a_server_error`` check; returns the
    exit code, the number of test cases with their response statuses, and the summary lines."""
    with_report = Path(tempfile.gettempdir()) / f"schemathesis-{uuid.uuid4().hex}.ndjson"
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{service.url}/openapi.json",
               "--checks", "not_a_server_error", "--max-examples", str(max_examples), "--phases", phases, "--seed", str(seed),
               "--request-timeout", "30", "--report", "ndjson", "--report-ndjson-path", str(with_report),
               "--no-color", "--workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    cases, statuses = 0, {}
    if with_report.is_file():
        for line in with_report.read_text().splitlines():
            event = json.loads(line)
            for interaction in _interactions(event):
                cases += 1
                status = str(interaction)
                statuses[status] = statuses.get(status, 0) + 1
        with_report.unlink()
    summary = [line for line in result.stdout.splitlines() if line.strip() and str(with_report) not in line][-12:]
    return {"returncode": result.returncode, "cases": cases, "statuses": dict(sorted(statuses.items())),
            "summary": summary}


def _interactions(event: dict) -> Iterator[int]:
    """Response status codes recorded in one ndjson event of a schemathesis report."""
    stack = [event]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "status_code" in item and isinstance(item["status_code"], int) and "elapsed" in item:
                yield item["status_code"]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# --- load ----------------------------------------------------------------------------------------------------------

def load_run(service: Service, expected: list[np.ndarray], uploads: list[bytes], requests: int, clients: int,
             warmup: int = 64) -> dict:
    """``requests`` POST /v1/matte from ``clients`` threads over the images of ``uploads``; every answer must be
    the matte of the image it was asked about (``expected``, uint8, within 1 level). RSS is read after a warm-up
    of ``warmup`` requests and after the load."""
    def one(i: int) -> tuple[float, str | None]:
        k = i % len(uploads)
        body, content_type = multipart({"image": ("image/png", uploads[k])})
        began = time.perf_counter()
        try:
            status, _, data = service.post("/v1/matte", body, content_type)
        except OSError as error:
            return time.perf_counter() - began, f"request {i}: {error}"
        took = time.perf_counter() - began
        if status != 200:
            return took, f"request {i}: HTTP {status} {data[:200]!r}"
        matte = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if matte is None or matte.shape != expected[k].shape or np.abs(matte.astype(int) - expected[k]).max() > 1:
            return took, f"request {i}: the answer is not the matte of image {k} (a mix-up between requests?)"
        return took, None

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(warmup)))
        rss_before = service.rss_mib()
        began = time.perf_counter()
        results = list(pool.map(one, range(requests)))
        seconds = time.perf_counter() - began
    rss_after = service.rss_mib()
    latencies = np.array([took for took, _ in results]) * 1e3
    errors = [error for _, error in results if error]
    return {"requests": requests, "clients": clients, "seconds": seconds, "throughput_rps": requests / seconds,
            "p50_ms": float(np.percentile(latencies, 50)), "p95_ms": float(np.percentile(latencies, 95)),
            "p99_ms": float(np.percentile(latencies, 99)), "max_ms": float(latencies.max()),
            "errors": len(errors), "first_errors": errors[:5], "rss_before_mib": rss_before,
            "rss_after_mib": rss_after}


# --- abuse ---------------------------------------------------------------------------------------------------------

def _raw_exchange(service: Service, chunks: list[tuple[float, bytes]], timeout_s: float) -> tuple[float, bytes]:
    """Send ``chunks`` (delay before each, bytes) on a raw socket from a thread while reading the answer here until
    it is complete, the server closes or ``timeout_s`` passes; (seconds until the answer's first byte, answer)."""
    def send() -> None:
        try:
            for delay, data in chunks:
                time.sleep(delay)
                sock.sendall(data)
        except OSError:  # the server answered and closed while we were still sending
            pass

    began = time.perf_counter()
    answer, first = b"", None
    with socket.create_connection(service.address, timeout=timeout_s) as sock:
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            while not (b"\r\n\r\n" in answer and _complete(answer)):
                data = sock.recv(65536)
                if not data:
                    break
                first = time.perf_counter() - began if first is None else first
                answer += data
        except OSError:  # timed out, or reset by the server
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR)  # the sender's next write fails: it stops
        except OSError:
            pass
        sender.join()
    return (first if first is not None else time.perf_counter() - began), answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _status_and_json(answer: bytes) -> tuple[int | None, object]:
    if not answer.startswith(b"HTTP/1.1 "):
        return None, None
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        return int(head.split()[1]), json.loads(body)
    except ValueError:
        return int(head.split()[1]), None


def _request(path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def abuse_cases(max_bytes: int, body_timeout_s: float) -> dict[str, list[tuple[float, bytes]]]:
    """name -> the chunks of one abusive request (delay before each chunk, bytes)."""
    image = png(picture(0))
    body, content_type = multipart({"image": ("image/png", image)})
    trickle = [(0.0, _request("/v1/mask", {"Content-Type": content_type, "Content-Length": str(len(body))}))]
    trickle += [(body_timeout_s / 4, body[i:i + 1]) for i in range(8)]  # 1 byte per quarter timeout
    huge_body = bytes(max_bytes + 1)
    half_png = _with_boundary(image[:len(image) // 2], "b")
    return {
        "declared body over the limit": [(0.0, _request("/v1/mask", {"Content-Type": content_type,
                                                                     "Content-Length": str(max_bytes * 100)}))],
        "chunked body over the limit": [(0.0, _request("/v1/mask", {"Content-Type": content_type,
                                                                    "Transfer-Encoding": "chunked"})),
                                        (0.0, f"{len(huge_body):x}\r\n".encode() + huge_body + b"\r\n0\r\n\r\n")],
        "stalled body (slow loris)": [(0.0, _request("/v1/mask", {"Content-Type": content_type,
                                                                  "Content-Length": str(len(body))}, body[:100]))],
        "trickled body (slow loris)": trickle,
        "body shorter than declared, then silence": [(0.0, _request("/v1/stats", {
            "Content-Type": content_type, "Content-Length": str(len(body) + 1000)}, body))],
        "garbage body": [(0.0, _request("/v1/mask", {"Content-Type": content_type, "Content-Length": "4096"},
                                        np.random.default_rng(1).bytes(4096)))],
        "boundary never used": [(0.0, _request("/v1/mask", {"Content-Type": "multipart/form-data; boundary=zzz",
                                                            "Content-Length": str(len(body))}, body))],
        "no content type": [(0.0, _request("/v1/mask", {"Content-Length": str(len(body))}, body))],
        "image field holding half a PNG": [(0.0, _request("/v1/matte", {
            "Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(len(half_png))}, half_png))],
    }


def _with_boundary(data: bytes, boundary: str) -> bytes:
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\nContent-Type: image/png\r\n\r\n'
            .encode() + data + f"\r\n--{boundary}--\r\n".encode())


def abuse_run(service: Service, max_bytes: int, body_timeout_s: float, answer_within_s: float) -> dict:
    """Each abusive request (run together with 20 idle slow-loris connections) must get a 4xx JSON answer within
    ``answer_within_s``; meanwhile ordinary requests must keep succeeding."""
    idle = [socket.create_connection(service.address) for _ in range(20)]
    for sock in idle:
        sock.sendall(b"POST /v1/mask HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    stop, served = threading.Event(), []

    def ordinary() -> None:
        body, content_type = multipart({"image": ("image/png", png(picture(1)))})
        while not stop.is_set():
            served.append(service.post("/v1/stats", body, content_type, timeout=30)[0])
            time.sleep(0.05)

    background = threading.Thread(target=ordinary)
    background.start()
    cases = {}
    try:
        for name, chunks in abuse_cases(max_bytes, body_timeout_s).items():
            seconds, answer = _raw_exchange(service, chunks, answer_within_s)
            status, detail = _status_and_json(answer)
            ok = status is not None and 400 <= status < 500 and isinstance(detail, dict) and "detail" in detail
            cases[name] = {"status": status, "seconds": round(seconds, 3), "ok": ok and seconds <= answer_within_s,
                           "detail": detail.get("detail") if isinstance(detail, dict) else answer[:120].decode(
                               "latin-1")}
    finally:
        stop.set()
        background.join()
        for sock in idle:
            sock.close()
    return {"cases": cases, "ordinary_requests": len(served),
            "ordinary_failures": sum(1 for status in served if status != 200)}
