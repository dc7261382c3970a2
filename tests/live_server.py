"""A real ``python -m portrait_sdk.serve`` on a free loopback port, for the tests that talk HTTP to it.

(FastAPI's TestClient needs httpx, which the SDK's environment does not install; a real server also exercises
uvicorn, the thread pool and the process's memory as deployed.)
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen

    def rss_kib(self) -> int:
        """The server process's resident memory (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for process {self.process.pid}")

    def request(self, path: str, body: bytes | None = None, content_type: str | None = None,
                timeout: float = 30) -> Reply:
        headers = {"Content-Type": content_type} if content_type else {}
        request = urllib.request.Request(self.url + path, data=body, headers=headers,
                                         method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Reply(response.status, response.headers.get("content-type", ""), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers.get("content-type", ""), error.read())

    def post_files(self, path: str, files: dict[str, tuple[str | None, bytes]], timeout: float = 30) -> Reply:
        """POST ``files`` (field -> (part content type or None, bytes)) as multipart/form-data."""
        body, content_type = multipart(files)
        return self.request(path, body, content_type, timeout)


def multipart(files: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, as a browser or curl -F would send them."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, (content_type, data) in files.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'.encode()
        if content_type:
            body += f"Content-Type: {content_type}\r\n".encode()
        body += b"\r\n" + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(models: Path, *options: str, log: Path, startup_s: float = 60) -> Iterator[Server]:
    """Start the service on ``models`` (extra command-line ``options``), wait until it answers, stop it after."""
    port = free_port()
    command = [sys.executable, "-m", "portrait_sdk.serve", "--models", str(models), "--host", LOOPBACK,
               "--port", str(port), "--log-level", "warning", *options]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(f"http://{LOOPBACK}:{port}", process)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if server.request("/v1/models", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {startup_s} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
