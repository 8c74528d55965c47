"""Masking for every log line: phone numbers and known secret values, applied to a
record once, before any formatter sees it (bot.web.logs wires it into the app's handlers).

Kept apart from bot.web.logs, with no Flask or requests import, because gunicorn loads its
`logger_class` in the master process before the gevent worker patches the standard
library: importing ssl there first breaks TLS in the workers.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger as GunicornBaseLogger

from bot.core.phones import mask

#: E.164-like: 10-15 digits standing alone, with or without "+", and "+" numbers
#: written with spaces, dots or dashes ("+91 98123-45678").
#: Not inside a word (an RQ job's UUID, a hex digest) and not a Redis stream id
#: ("1764687000000-0"): those are ids an operator greps for, never numbers. A "+"
#: percent-encoded in a path ("%2B91...") still starts one.
_PHONE = re.compile(
    r"(?:(?<=%2[Bb])|(?<![\dA-Za-z+]))(?:\+\d(?:[ .-]?\d){9,14}|\+?\d{10,15})(?![\dA-Za-z]|-\d)",
    re.ASCII,
)
#: Attributes every LogRecord has; anything else was passed with `extra=`.
STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "job_id",
    "context",
}


def mask_phones(text: str) -> str:
    """`text` with every phone-number-like digit run masked as bot.core.phones.mask does."""
    return _PHONE.sub(lambda m: mask(re.sub(r"\D", "", m.group())), text)


class RedactFilter(logging.Filter):
    """Masks phone numbers and blanks known secret values everywhere in a record."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(sorted((s for s in secrets if s), key=len, reverse=True))

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        return mask_phones(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_dakiya_redacted", False):
            return True  # another handler of ours already did it
        try:
            record.msg = self.clean(record.getMessage())
        except Exception:  # a malformed call: let the handler report it, never the caller
            return True
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self.clean(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, self.clean(value))
        record._dakiya_redacted = True
        return True


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger (`logger_class` in gunicorn.conf.py) with phone numbers masked in
    its access log (paths, request lines, referrers) and its error log, which write
    through their own handlers and so never pass the app's RedactFilter."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactFilter) for f in logger.filters):
                logger.addFilter(RedactFilter())
