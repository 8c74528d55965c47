"""Many provider calls at once from synchronous code: aiohttp on a private event loop.

The batch sender hands over a few hundred requests; they go out concurrently over one
pool of keep-alive connections, and each comes back as an answer shaped like a
`requests.Response` (so the providers read both the same way) or as a `ProviderError`
with the same RETRY / AMBIGUOUS classification as the `requests` path. The loop and the
session live as long as the process (a non-forking worker keeps its connections warm
across jobs) and are made lazily, so a forked process never inherits a parent's.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass

import aiohttp
from requests.structures import CaseInsensitiveDict

from bot.delivery.providers.base import ErrorKind, ProviderError


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One JSON POST."""

    url: str
    headers: Mapping[str, str]
    body: dict


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """The parts of an HTTP response the providers read, named as on `requests.Response`."""

    status_code: int
    reason: str
    headers: CaseInsensitiveDict
    text: str
    url: str = ""  # the URL posted to

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def json(self):
        return json.loads(self.text)


# Failures before a byte of the request left: resending cannot duplicate a message.
_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL)


def classify_client_error(exc: BaseException) -> ErrorKind:
    """RETRY when nothing reached the provider, AMBIGUOUS when it may have (see http.py)."""
    return ErrorKind.RETRY if isinstance(exc, _NEVER_SENT) else ErrorKind.AMBIGUOUS


def _shut_down(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession | None) -> None:
    if loop.is_closed():
        return
    if session is not None:
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)


class ConcurrentPoster:
    """POSTs lists of requests concurrently, each over a connection of its own.

    No connection limit: the sender bounds what is in flight (two batches per worker),
    and a request that waited for a free connection would reach the provider later than
    its rate slot was granted, bunching sends into one second.

    The event loop runs in a daemon thread of its own, so a caller can `submit` a batch,
    prepare the next one while this one is in flight, and collect the answers later.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = threading.Lock()

    def submit(
        self, requests: list[HttpRequest], offsets: list[float] | None = None
    ) -> Future[list[HttpAnswer | ProviderError]]:
        """Start sending and return once every request is on the wire (or has failed);
        the future holds every request's answer (or error), in order. `offsets`: the
        seconds from now at which each request goes out (the pacing schedule); then it
        returns at once, the requests waiting on the event loop for their times, so that
        the caller books its next batches meanwhile and the schedule never runs dry.

        Waiting for the wire keeps a batch's sends inside the second its rate slots were
        granted: the caller's next CPU-bound work cannot starve the event loop meanwhile.
        """
        if not requests:
            done: Future = Future()
            done.set_result([])
            return done
        batch = Dispatch(len(requests))
        future = asyncio.run_coroutine_threadsafe(
            self._post_all(requests, batch, offsets), self._event_loop()
        )
        if not offsets:
            batch.on_the_wire.wait(self.timeout)
        return future

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid():  # first use, or we are a forked child
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="provider-http", daemon=True).start()
                self._loop, self._session, self._pid = loop, None, os.getpid()
            return self._loop

    async def _post_all(
        self, requests: list[HttpRequest], batch: Dispatch, offsets: list[float] | None
    ) -> list[HttpAnswer | ProviderError]:
        if self._session is None or self._session.closed:
            tracing = aiohttp.TraceConfig()
            tracing.on_request_headers_sent.append(_headers_sent)
            self._session = aiohttp.ClientSession(
                trace_configs=[tracing],
                connector=aiohttp.TCPConnector(limit=0),
                # Per phase, so a connect timeout (never sent) and a read timeout
                # (maybe sent) stay distinguishable.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeout, sock_read=self.timeout
                ),
            )
            # Closed with its poster (a rebuilt provider, the end of a test), not leaked.
            weakref.finalize(self, _shut_down, self._loop, self._session)
        at = [0.0] * len(requests) if offsets is None else offsets
        start = asyncio.get_running_loop().time()
        return await asyncio.gather(
            *(
                self._post(r, OneRequest(batch), start + t)
                for r, t in zip(requests, at, strict=True)
            )
        )

    async def _post(
        self, request: HttpRequest, one: OneRequest, at: float = 0.0
    ) -> HttpAnswer | ProviderError:
        delay = at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)  # its time in the pacing schedule
        try:
            async with self._session.post(
                request.url,
                json=request.body,
                headers=dict(request.headers),
                trace_request_ctx=one,
            ) as response:
                text = await response.text()
                return HttpAnswer(
                    response.status,
                    response.reason or "",
                    CaseInsensitiveDict(response.headers),
                    text,
                    request.url,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return ProviderError(f"{type(exc).__name__}: {exc}", kind=classify_client_error(exc))
        finally:
            one.done()  # failed before the wire, or answered: either way not pending


class Dispatch:
    """Counts a batch's requests until each is on the wire (or failed)."""

    def __init__(self, requests: int) -> None:
        self.pending = requests
        self.on_the_wire = threading.Event()

    def one_done(self) -> None:  # called on the event loop's thread only
        self.pending -= 1
        if self.pending == 0:
            self.on_the_wire.set()


class OneRequest:
    def __init__(self, batch: Dispatch) -> None:
        self.batch = batch
        self.counted = False

    def done(self) -> None:
        if not self.counted:
            self.counted = True
            self.batch.one_done()


async def _headers_sent(session, context, params) -> None:
    """aiohttp trace hook: the request (headers, then its small JSON body) is going out."""
    if isinstance(context.trace_request_ctx, OneRequest):
        context.trace_request_ctx.done()
