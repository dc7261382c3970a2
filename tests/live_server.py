"""A real ``python -m portrait_sdk.serve`` on a free loopback port, for the tests that talk HTTP to it.

(FastAPI's TestClient needs httpx, which the SDK's environment does not install; a real server also exercises
uvicorn, the thread pool and the process's memory as deployed.)
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from portrait_sdk.reliability.service import multipart, running_service


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


@contextmanager
def running_server(models: Path, *options: str, log: Path, startup_s: float = 60) -> Iterator[Server]:
    """Start the service on ``models`` (extra command-line ``options``), wait until it answers, stop it after:
    the reliability harness's launcher, with the request helpers the tests use."""
    with running_service(models, log, *options, startup_s=startup_s) as service:
        yield Server(service.url, service.process)
