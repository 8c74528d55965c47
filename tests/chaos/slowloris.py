"""Slow clients for the fault tests: one client holding many connections to the web
process, each trickling its request one byte a second (the headers, or the body after
complete headers with a Content-Length), reconnecting whenever the server drops one,
as a slowloris attack does, until told to stop or its time runs out."""

from __future__ import annotations

import itertools
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


def bytes_then_padding(start: bytes) -> Iterator[bytes]:
    """`start` one byte at a time, then b"a" for ever."""
    return itertools.chain((start[i : i + 1] for i in range(len(start))), itertools.repeat(b"a"))


def trickled_headers(host: str) -> Iterator[bytes]:
    """A request whose headers never end: the request line, then one endless header."""
    start = f"POST /webhooks/orders HTTP/1.1\r\nHost: {host}\r\nX-Slow: "
    return bytes_then_padding(start.encode())


def trickled_body(host: str) -> tuple[bytes, Iterator[bytes]]:
    """Complete headers announcing a large JSON body, then that body a byte at a time."""
    head = (
        f"POST /webhooks/orders HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000\r\n"
        "X-Signature-256: sha256=00\r\n\r\n"
    ).encode()
    return head, bytes_then_padding(b'{"pad": "')


@dataclass
class _Conn:
    kind: str
    sock: socket.socket
    rest: Iterator[bytes]


@dataclass
class SlowClients:
    """`headers` connections trickling headers and `bodies` trickling bodies to
    127.0.0.1:`port`, one byte each per `every` seconds, for at most `seconds`."""

    port: int
    headers: int = 64
    bodies: int = 64
    every: float = 1.0
    seconds: float = 120.0
    rounds: int = 0  # trickle rounds done
    dropped: int = 0  # connections the server closed (each reopened)
    refused: int = 0  # connects that failed
    answers: list[str] = field(default_factory=list)  # status lines the server sent
    _conns: list[_Conn] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SlowClients:
        kinds = ["headers"] * self.headers + ["bodies"] * self.bodies
        self._conns = [c for c in (self._open(kind) for kind in kinds) if c is not None]
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)
        self._thread.start()
        return self

    @property
    def open(self) -> int:
        return len(self._conns)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for conn in self._conns:
            conn.sock.close()

    def _open(self, kind: str) -> _Conn | None:
        host = f"127.0.0.1:{self.port}"
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if kind == "headers":
                conn = _Conn(kind, sock, trickled_headers(host))
            else:
                head, body = trickled_body(host)
                sock.sendall(head)
                conn = _Conn(kind, sock, body)
            sock.sendall(next(conn.rest))
        except OSError:
            self.refused += 1
            return None
        return conn

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.wait(self.every) and time.monotonic() < deadline:
            poll = select.poll()  # not select(): no limit on descriptor numbers
            for conn in self._conns:
                poll.register(conn.sock, select.POLLIN)
            readable = {fd for fd, _ in poll.poll(0)}
            kept = []
            for conn in self._conns:
                try:
                    if conn.sock.fileno() in readable:  # an answer, or the server closed it
                        self._record_answer(conn.sock)
                        raise ConnectionResetError
                    conn.sock.sendall(next(conn.rest))
                    kept.append(conn)
                except OSError:  # the server gave up on it: come back, as an attacker would
                    conn.sock.close()
                    self.dropped += 1
                    again = self._open(conn.kind)
                    if again is not None:
                        kept.append(again)
            self._conns = kept
            self.rounds += 1

    def _record_answer(self, sock: socket.socket) -> None:
        data = sock.recv(4096)
        if data:
            self.answers.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
