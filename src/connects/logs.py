"""One logging setup for ``connects serve`` (uvicorn's loggers too) and ``connects worker``.

Every record is one JSON object on one line of standard error::

    {"time": "2026-01-15T09:00:00.123Z", "level": "info", "logger": "connects.worker",
     "message": "...", ...extra fields}

``extra={...}`` fields are kept as fields; uvicorn's access lines also get ``client``,
``method``, ``path`` and ``status``. Secrets are scrubbed from the message, the fields
and tracebacks: bearer tokens, one-time sign-in links (``/login/<token>``), the tokens
and passwords inside notification URLs (Telegram bot tokens, Slack and Discord webhooks,
also as the bare paths urllib3 logs under apprise, ``mailto://user:pass@``),
``token=``/``secret=`` parameters, and the configured secrets themselves
(``CONNECTS_OPERATOR_TOKEN``, ``CONNECTS_BUSINESS_MANAGER_TOKEN``,
``CONNECTS_SECRET_KEY``). Standard library only.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import threading
from datetime import UTC, datetime
from typing import Any

MASK = "***"
ENV_SECRETS = (
    "CONNECTS_OPERATOR_TOKEN",
    "CONNECTS_BUSINESS_MANAGER_TOKEN",
    "CONNECTS_SECRET_KEY",
    "CONNECTS_SMTP_URL",  # holds the SMTP password (R47)
)
_URL_END = r"[^\s\"'<>]*"
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), rf"\g<1>{MASK}"),
    (re.compile(r"(/login/)[A-Za-z0-9_\-]{6,}"), rf"\g<1>{MASK}"),
    # Apprise URLs carry the credentials right after the scheme.
    (
        re.compile(rf"(?i)\b(tgram|slack|discord|mailtos?|json|form|xml)://{_URL_END}"),
        rf"\1://{MASK}",
    ),
    (re.compile(rf"(?i)(https?://hooks\.slack\.com/){_URL_END}"), rf"\g<1>{MASK}"),
    (
        re.compile(rf"(?i)(https?://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/){_URL_END}"),
        rf"\g<1>{MASK}",
    ),
    # The same webhooks as bare paths, as urllib3 logs them under apprise ("Max retries
    # exceeded with url: /services/...", '"POST /api/webhooks/<id>/<token> HTTP/1.1"').
    (re.compile(r"(/services/)[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+"), rf"\g<1>{MASK}"),
    (re.compile(r"(/webhooks/)\d+/[A-Za-z0-9_.\-]+"), rf"\g<1>{MASK}"),
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9\-]+"), MASK),  # a Slack bot or user token
    (re.compile(r"(?i)(/bot)\d+:[A-Za-z0-9_\-]+"), rf"\g<1>{MASK}"),  # api.telegram.org/bot<token>
    (re.compile(r"\b\d{5,}:[A-Za-z0-9_\-]{30,}"), MASK),  # a bare Telegram bot token
    (
        re.compile(r"(?i)\b((?:access_|api_?|auth_?)?(?:token|secret|password|key)=)[^\s&\"']+"),
        rf"\1{MASK}",
    ),
    (re.compile(r"(?i)(\"(?:token|secret|password|authorization)\"\s*:\s*\")[^\"]*"), rf"\1{MASK}"),
    (re.compile(r"(?i)(://[^/\s:@\"']+:)[^@\s/\"']+@"), rf"\1{MASK}@"),  # user:password@host
]

_known: set[str] = set()
_known_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Scrub this exact value from every log line from now on (short values are ignored)."""
    if value and len(value) >= 8:
        with _known_lock:
            _known.add(value)


def _load_env_secrets() -> None:
    for name in ENV_SECRETS:
        add_secret(os.environ.get(name))


def scrub(text: str) -> str:
    """``text`` with every secret this module knows of replaced by ``***``."""
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    for pattern, repl in PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(v) for v in value]
    return scrub(str(value))


# Attributes every LogRecord has: anything else came in through ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


def _utc(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and extra fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        _load_env_secrets()

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _version, status = args
            doc.update(client=str(client), method=str(method), path=scrub(str(path)))
            doc["status"] = status
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in doc:
                doc[key] = _scrub_value(value)
        if record.exc_info:
            doc["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            doc["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


def config_dict(level: str = "info") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict; also uvicorn's ``log_config``."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "connects.logs.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": ["json"], "level": lvl, "propagate": False},
            # httpx logs every request URL at INFO: webhook URLs may hold a secret.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
        "root": {"handlers": ["json"], "level": lvl},
    }


def configure(level: str = "info") -> None:
    """Install the JSON setup in this process (``connects worker``)."""
    logging.config.dictConfig(config_dict(level))
