"""A fast fake WhatsApp provider (Meta Cloud API and Interakt) on 127.0.0.1, built on aiohttp.

For the benchmark and the fault tests: latency costs an `asyncio.sleep`, so thousands of
requests can be in flight; errors can be injected by fraction, by a scripted sequence or
per message; every request is logged against our message id (the `dakiya:<id>` callback
data) with arrival and answer times, readable in-process or over HTTP (`/_fake/...`); and
accepted sends can be followed by signed Meta status webhooks back to Dakiya.

In-process: ``fake = FakeProvider(latency=0.2).start(); ...; fake.stop()`` (own event
loop in a daemon thread, ``fake.url``). As a subprocess:
``python -m tests.fakes.provider_server --port 0 --latency 0.2`` prints its URL on the
first line of stdout; `provider_process()` does that and yields a `RemoteFake` client.
Shapes follow shared/PROVIDERS.md §1.1-§1.3, §1.6, §1.9, §2.1-§2.4.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import requests
from aiohttp import web

#: What an injected fault does; "ok" in a script means "answer normally".
#:   429     HTTP 429 + Retry-After (Meta: pair rate limit 131056; Interakt: its 429 body)
#:   500/503 server errors (Meta codes 1 / 2)
#:   130429  Meta throughput exceeded: HTTP 400, code 130429 (Interakt: treated as 429)
#:   131049  Meta per-user marketing cap: HTTP 400, code 131049 (Interakt: HTTP 400)
#:   timeout hold the request `hold` seconds (past the client's timeout), then accept it:
#:           the provider *did* send, the client does not know
#:   drop    close the connection without an answer (nothing sent)
FAULTS = ("ok", "429", "500", "503", "130429", "131049", "timeout", "drop")
ACCEPTED = (200, 201)
CALLBACK_PREFIX = "dakiya:"


@dataclass(slots=True)
class Send:
    """One request to a send endpoint, as the fake saw it (times are `time.time()`)."""

    message_id: int | None  # from callback data "dakiya:<id>", None without it
    provider: str  # "meta" | "interakt"
    arrived: float
    answered: float | None = None  # None while held, or when dropped
    status: int | None = None  # HTTP status answered; None when dropped
    fault: str | None = None
    provider_message_id: str | None = None
    to: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED


@dataclass
class FakeProvider:
    """The fake; every knob can be changed while it runs (`configure`, `/_fake/config`)."""

    host: str = "127.0.0.1"
    port: int = 0
    latency: float = 0.2
    #: fault -> fraction of requests, e.g. {"429": 0.05, "timeout": 0.01}
    errors: dict[str, float] = field(default_factory=dict)
    hold: float = 30.0  # seconds a "timeout" fault holds the request
    retry_after: int = 1  # seconds, on 429 answers
    seed: int | None = None
    meta_token: str | None = None  # None: any Bearer token is accepted
    interakt_key: str | None = None  # None: any Basic key is accepted
    #: Meta status webhooks after each accepted Meta send (None: no receipts)
    receipts_url: str | None = None
    app_secret: str = ""
    receipts: tuple[str, ...] = ("sent", "delivered", "read")
    receipt_batch: int = 100  # statuses per webhook POST (Meta batches up to 1000)
    receipt_interval: float = 0.05  # seconds a partial batch waits for more
    receipt_posters: int = 1  # webhook POSTs in flight at once (Meta posts concurrently)
    waba_id: str = "102290129340398"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._random = random.Random(self.seed)
        self._script: deque[str] = deque()
        self._per_message: dict[int, deque[str]] = {}
        self.log: list[Send] = []  # completed requests, in order of answer
        self.in_flight = 0
        self.receipts_posted = 0  # webhook POSTs answered 2xx
        self.receipts_failed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._outbox: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self.url = ""

    # -- control (thread-safe) -------------------------------------------------------

    def configure(self, **knobs) -> None:
        """Change knobs while running, e.g. ``configure(latency=0, errors={"500": 1.0})``."""
        for name, value in knobs.items():
            if name not in ("latency", "errors", "hold", "retry_after", "receipts_url"):
                raise ValueError(f"unknown knob {name!r}")
            if name == "errors":
                _check_faults(value)
            setattr(self, name, value)

    def script(self, *faults: str) -> None:
        """Answer the next requests with these faults, in order, before any fraction."""
        _check_faults(faults)
        with self._lock:
            self._script.extend(faults)

    def script_for(self, message_id: int, *faults: str) -> None:
        """Answer the next requests carrying `dakiya:<message_id>` with these faults."""
        _check_faults(faults)
        with self._lock:
            self._per_message.setdefault(message_id, deque()).extend(faults)

    def reset(self) -> None:
        """Forget requests, scripts and injected errors (latency stays)."""
        with self._lock:
            self.log.clear()
            self._script.clear()
            self._per_message.clear()
            self.errors = {}
            self.receipts_posted = self.receipts_failed = 0

    # -- reading -----------------------------------------------------------------------

    def sends(self, since: int = 0) -> list[Send]:
        with self._lock:
            return self.log[since:]

    def counts(self) -> dict[int, int]:
        """Requests per message id (every attempt, whatever the answer)."""
        return _count(self.sends(), accepted_only=False)

    def accepted_counts(self) -> dict[int, int]:
        """Accepted sends per message id: above 1 is a duplicate send to the customer."""
        return _count(self.sends(), accepted_only=True)

    def count(self, message_id: int) -> int:
        return self.counts().get(message_id, 0)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Serve from a daemon thread with its own event loop; returns when listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.serve())
            except BaseException as exc:  # noqa: BLE001  (reported to start())
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def serve(self) -> None:
        """Start listening on the running loop (used by `start()` and the CLI)."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/{version}/{phone_number_id}/messages", self._meta_send)
        app.router.add_post("/v1/public/message/", self._interakt_send)
        app.router.add_get("/_fake/sends", self._get_sends)
        app.router.add_get("/_fake/counts", self._get_counts)
        app.router.add_post("/_fake/reset", self._post_reset)
        app.router.add_post("/_fake/config", self._post_config)
        app.router.add_post("/_fake/script", self._post_script)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        await web.SockSite(self._runner, sock, backlog=4096).start()
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self._outbox = asyncio.Queue()
        for _ in range(max(1, self.receipt_posters)):
            self._tasks.append(asyncio.create_task(self._post_receipts()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        if self._runner:
            await self._runner.cleanup()

    # -- send endpoints ----------------------------------------------------------------

    async def _meta_send(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        body = await _json_object(request)
        callback = body.get("biz_opaque_callback_data") if body else None
        send = Send(_message_id(callback), "meta", arrived, to=_str(body, "to"))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        if not token or (self.meta_token is not None and token != self.meta_token):
            return self._finish(send, 401, meta_error(190, "Invalid OAuth access token."))
        if not body or body.get("messaging_product") != "whatsapp" or not send.to:
            missing = "(#100) The parameter messaging_product and to are required."
            return self._finish(send, 400, meta_error(100, missing))
        return await self._answer(request, send, self._meta_fault_answer, self._meta_ok)

    async def _interakt_send(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        body = await _json_object(request)
        callback = body.get("callbackData") if body else None
        to = _str(body, "fullPhoneNumber") or (
            f"{_str(body, 'countryCode') or ''}{_str(body, 'phoneNumber') or ''}" or None
        )
        send = Send(_message_id(callback), "interakt", arrived, to=to)
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Basic ") if auth.startswith("Basic ") else None
        if not key or (self.interakt_key is not None and key != self.interakt_key):
            return self._finish(send, 401, {"result": False, "message": "Invalid API Key"})
        if not body or not to or not _str(body, "type"):
            invalid = {"result": False, "message": "Invalid request: phone number and type"}
            return self._finish(send, 400, invalid)
        return await self._answer(request, send, _interakt_fault_answer, self._interakt_ok)

    async def _answer(self, request, send: Send, fault_answer, ok) -> web.StreamResponse:
        fault = self._next_fault(send.message_id)
        send.fault = None if fault == "ok" else fault
        self.in_flight += 1
        try:
            await asyncio.sleep(self.hold if fault == "timeout" else self.latency)
        finally:
            self.in_flight -= 1
        if fault == "drop":
            # No answer at all: the client sees the connection reset.
            request.transport.abort()
            self._record(send)
            return web.Response(status=500)
        if fault in (None, "ok", "timeout"):
            status, answer = ok(send)
            return self._finish(send, status, answer)
        status, answer = fault_answer(fault)
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else None
        return self._finish(send, status, answer, headers)

    def _meta_ok(self, send: Send) -> tuple[int, dict]:
        send.provider_message_id = f"wamid.FAKE{next(self._ids):012d}{uuid.uuid4().hex[:12]}"
        if self.receipts_url and self._outbox is not None:
            self._outbox.put_nowait(send)
        return 200, meta_accepted(send.to, send.provider_message_id)

    def _interakt_ok(self, send: Send) -> tuple[int, dict]:
        send.provider_message_id = str(uuid.uuid4())
        return 201, interakt_accepted(send.provider_message_id)

    def _meta_fault_answer(self, fault: str) -> tuple[int, dict]:
        return _META_FAULTS[fault]()

    def _next_fault(self, message_id: int | None) -> str | None:
        with self._lock:
            queue = self._per_message.get(message_id) if message_id is not None else None
            if queue:
                return queue.popleft()
            if self._script:
                return self._script.popleft()
        draw = self._random.random()
        for fault, fraction in self.errors.items():
            if draw < fraction:
                return fault
            draw -= fraction
        return None

    def _finish(self, send: Send, status: int, answer: dict, headers=None) -> web.Response:
        send.status = status
        send.answered = time.time()
        self._record(send)
        return web.Response(
            status=status, body=json.dumps(answer), content_type="application/json", headers=headers
        )

    def _record(self, send: Send) -> None:
        with self._lock:
            self.log.append(send)

    # -- receipts ----------------------------------------------------------------------

    async def _post_receipts(self) -> None:
        """Batch accepted Meta sends into signed status webhooks to `receipts_url`."""
        assert self._outbox is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while True:
                batch = [await self._outbox.get()]
                deadline = asyncio.get_running_loop().time() + self.receipt_interval
                per_send = max(1, len(self.receipts))
                while len(batch) * per_send < self.receipt_batch:
                    left = deadline - asyncio.get_running_loop().time()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._outbox.get(), left))
                    except TimeoutError:
                        break
                for status in self.receipts:
                    await self._post_statuses(session, [_status(s, status) for s in batch])

    async def _post_statuses(self, session: aiohttp.ClientSession, statuses: list[dict]) -> None:
        payload = status_webhook(statuses, self.waba_id)
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(self.app_secret, body),
        }
        for attempt in range(5):  # Meta retries failed deliveries (§1.7)
            try:
                async with session.post(self.receipts_url, data=body, headers=headers) as answer:
                    if answer.status < 300:
                        self.receipts_posted += 1
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2 * 2**attempt)
        self.receipts_failed += 1

    # -- control endpoints -------------------------------------------------------------

    async def _get_sends(self, request: web.Request) -> web.Response:
        """`?since=N`: the log from entry N on, as compact rows (see `SEND_FIELDS`)."""
        since = int(request.query.get("since", "0"))
        rows = [_row(s) for s in self.sends(since)]
        return web.json_response(
            {"fields": SEND_FIELDS, "next": since + len(rows), "sends": rows, **self._stats()}
        )

    async def _get_counts(self, request: web.Request) -> web.Response:
        log = self.sends()
        return web.json_response(
            {
                "requests": {str(k): v for k, v in _count(log, accepted_only=False).items()},
                "accepted": {str(k): v for k, v in _count(log, accepted_only=True).items()},
                **self._stats(),
            }
        )

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            self.configure(**await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _post_script(self, request: web.Request) -> web.Response:
        """`{"faults": [...]}` for the next requests, or with `"message_id"` for one message."""
        data = await request.json()
        try:
            if data.get("message_id") is not None:
                self.script_for(int(data["message_id"]), *data["faults"])
            else:
                self.script(*data["faults"])
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    def _stats(self) -> dict:
        with self._lock:
            total = len(self.log)
        return {
            "total": total,
            "in_flight": self.in_flight,
            "receipts_posted": self.receipts_posted,
            "receipts_failed": self.receipts_failed,
        }


# -- payloads --------------------------------------------------------------------------


def meta_accepted(to: str | None, wamid: str, recipient: str | None = None) -> dict:
    """Graph's answer to an accepted send (§1.3); one sent to a BSUID (`recipient`)
    answers with the contact's `user_id` and no `wa_id` (§9.1)."""
    contact = {"input": to, "wa_id": to} if to else {"input": recipient, "user_id": recipient}
    return {
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    }


def interakt_accepted(message_id: str) -> dict:
    """Interakt's answer to an accepted send (§2.2)."""
    return {"result": True, "message": "Message created successfully", "id": message_id}


def meta_error(code: int, message: str, details: str | None = None) -> dict:
    """Graph's error body (§1.3): logic keys off `code` and `error_data.details`."""
    error: dict = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_subcode": 2494055 if code == 130429 else None,
        "fbtrace_id": "A" + uuid.uuid4().hex[:22],
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if error["error_subcode"] is None:
        del error["error_subcode"]
    return {"error": error}


_META_FAULTS = {
    "429": lambda: (
        429,
        meta_error(
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this "
            "phone number to the same phone number in a short period of time.",
        ),
    ),
    "500": lambda: (500, meta_error(1, "An unknown error occurred")),
    "503": lambda: (503, meta_error(2, "Service temporarily unavailable")),
    "130429": lambda: (
        400,
        meta_error(
            130429,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
    ),
    "131049": lambda: (
        400,
        meta_error(
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "This message was not delivered to maintain healthy ecosystem engagement.",
        ),
    ),
}


def _interakt_fault_answer(fault: str) -> tuple[int, dict]:
    if fault in ("429", "130429"):
        return 429, {"message": "Rate limit exceeded for this resource"}
    if fault == "131049":
        return 400, {
            "result": False,
            "message": "This message was not delivered to maintain healthy ecosystem engagement.",
        }
    return int(fault), {"result": False, "message": "Internal Server Error"}


def _status(send: Send, status: str) -> dict:
    """One `statuses[]` entry (§1.9), echoing the callback data like Meta does."""
    entry: dict = {
        "id": send.provider_message_id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": send.to,
    }
    if send.message_id is not None:
        entry["biz_opaque_callback_data"] = f"{CALLBACK_PREFIX}{send.message_id}"
    if status != "read":
        entry["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "utility",
        }
    return entry


def status_webhook(
    statuses: list[dict],
    waba_id: str = "102290129340398",
    phone_number_id: str = "106540352242922",
) -> dict:
    """A Meta `messages` webhook carrying these statuses (§1.7, §1.9)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": statuses,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def meta_signature(app_secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` for a body (§1.6)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


# -- helpers ---------------------------------------------------------------------------

SEND_FIELDS = [
    "message_id",
    "provider",
    "arrived",
    "answered",
    "status",
    "fault",
    "provider_message_id",
    "to",
]


def _row(send: Send) -> list:
    return [getattr(send, name) for name in SEND_FIELDS]


def _count(log: list[Send], *, accepted_only: bool) -> dict[int, int]:
    counts: dict[int, int] = {}
    for send in log:
        if send.message_id is not None and (send.accepted or not accepted_only):
            counts[send.message_id] = counts.get(send.message_id, 0) + 1
    return counts


def _check_faults(faults) -> None:
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")


def _message_id(callback: object) -> int | None:
    if isinstance(callback, str) and callback.startswith(CALLBACK_PREFIX):
        tail = callback.removeprefix(CALLBACK_PREFIX)
        if tail.isdigit():
            return int(tail)
    return None


def _str(body: dict | None, key: str) -> str | None:
    value = body.get(key) if body else None
    return value if isinstance(value, str) and value else None


async def _json_object(request: web.Request) -> dict | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# -- subprocess ------------------------------------------------------------------------


class RemoteFake:
    """Reads and steers a fake running in another process, over `/_fake/...`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def sends(self, since: int = 0) -> list[Send]:
        answer = self.session.get(f"{self.url}/_fake/sends", params={"since": since}, timeout=60)
        answer.raise_for_status()
        data = answer.json()
        return [Send(**dict(zip(data["fields"], row, strict=True))) for row in data["sends"]]

    def stats(self) -> dict:
        answer = self.session.get(f"{self.url}/_fake/sends", params={"since": 10**12}, timeout=10)
        answer.raise_for_status()
        data = answer.json()
        return {k: data[k] for k in ("total", "in_flight", "receipts_posted", "receipts_failed")}

    def counts(self) -> dict[int, int]:
        return self._counts()["requests"]

    def accepted_counts(self) -> dict[int, int]:
        return self._counts()["accepted"]

    def count(self, message_id: int) -> int:
        return self.counts().get(message_id, 0)

    def reset(self) -> None:
        self.session.post(f"{self.url}/_fake/reset", timeout=10).raise_for_status()

    def configure(self, **knobs) -> None:
        self.session.post(f"{self.url}/_fake/config", json=knobs, timeout=10).raise_for_status()

    def script(self, *faults: str) -> None:
        answer = self.session.post(
            f"{self.url}/_fake/script", json={"faults": list(faults)}, timeout=10
        )
        answer.raise_for_status()

    def script_for(self, message_id: int, *faults: str) -> None:
        body = {"message_id": message_id, "faults": list(faults)}
        self.session.post(f"{self.url}/_fake/script", json=body, timeout=10).raise_for_status()

    def _counts(self) -> dict[str, dict[int, int]]:
        answer = self.session.get(f"{self.url}/_fake/counts", timeout=60)
        answer.raise_for_status()
        data = answer.json()
        return {key: {int(k): v for k, v in data[key].items()} for key in ("requests", "accepted")}


@contextmanager
def provider_process(*options: str, log: Path | None = None) -> Iterator[tuple[RemoteFake, int]]:
    """Run the fake as a subprocess with these CLI options; yield (client, pid); stop it."""
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "tests.fakes.provider_server", "--port", "0", *options]
    stderr = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True
    )
    try:
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            raise RuntimeError(f"fake provider did not start: {line!r}")
        yield RemoteFake(line), proc.pid
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stdout.close()
        if log:
            stderr.close()


def parse_errors(text: str) -> dict[str, float]:
    """`"429=0.05,timeout=0.01"` -> {"429": 0.05, "timeout": 0.01}."""
    errors = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        fault, _, fraction = part.partition("=")
        errors[fault] = float(fraction)
    _check_faults(errors)
    return errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per answer")
    parser.add_argument("--errors", type=parse_errors, default={}, help="e.g. 429=0.05,500=0.01")
    parser.add_argument("--script", default="", help="faults for the first requests, e.g. 429,ok")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds a timeout holds")
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--meta-token")
    parser.add_argument("--interakt-key")
    parser.add_argument("--receipts-url", help="POST signed Meta status webhooks here")
    parser.add_argument("--app-secret", default="")
    parser.add_argument("--receipts", default="sent,delivered,read")
    parser.add_argument("--receipt-batch", type=int, default=100)
    parser.add_argument("--receipt-posters", type=int, default=1, help="POSTs in flight")
    args = parser.parse_args(argv)
    fake = FakeProvider(
        host=args.host,
        port=args.port,
        latency=args.latency,
        errors=args.errors,
        hold=args.hold,
        retry_after=args.retry_after,
        seed=args.seed,
        meta_token=args.meta_token,
        interakt_key=args.interakt_key,
        receipts_url=args.receipts_url,
        app_secret=args.app_secret,
        receipts=tuple(filter(None, args.receipts.split(","))),
        receipt_batch=args.receipt_batch,
        receipt_posters=args.receipt_posters,
    )
    if args.script:
        fake.script(*args.script.split(","))

    async def run() -> None:
        await fake.serve()
        sys.stdout.write(fake.url + "\n")
        sys.stdout.flush()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()
        await fake.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
