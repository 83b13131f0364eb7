"""connects.logs: one JSON object per line, extra fields kept, secrets scrubbed."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from connects import logs


def _format(record: logging.LogRecord) -> dict[str, object]:
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    out: dict[str, object] = json.loads(line)
    return out


def _record(
    msg: str, *args: object, name: str = "connects.t", **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args or None, None)
    record.__dict__.update(extra)
    return record


def test_one_json_object_with_time_level_logger_message_and_extras() -> None:
    doc = _format(_record("ran %s", "cycles", account_id="acct_1", count=3))
    assert doc["level"] == "info" and doc["logger"] == "connects.t"
    assert doc["message"] == "ran cycles"
    assert str(doc["time"]).endswith("Z") and "T" in str(doc["time"])
    assert doc["account_id"] == "acct_1" and doc["count"] == 3


def test_exceptions_are_one_line_too() -> None:
    try:
        raise ValueError("boom Bearer sekrit-token-123")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    doc = _format(record)
    assert "ValueError" in str(doc["exception"]) and "sekrit" not in str(doc["exception"])


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer cx_abcdefghijklmnop", "cx_abcdefghijklmnop"),
        ('GET /login/Zx8_k2-abcdefghijklmnopqrstu HTTP/1.1" 303', "Zx8_k2-abcdefghijklmnopqrstu"),
        ("POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSe/sendMessage", "AAHdq"),
        ("token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ", "AAHdqTcv"),
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ/42", "AAHdqTcv"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", "XXXXXXXXXXXX"),
        ("https://discord.com/api/webhooks/123/abcdefSECRETtoken", "SECRETtoken"),
        ("mailtos://user:hunter2pass@smtp.example.com:587", "hunter2pass"),
        ("postgresql+psycopg://app:dbpassw0rd@db/connects", "dbpassw0rd"),
        ("https://x.io/hook?token=abc123secret&x=1", "abc123secret"),
        ('{"token": "cx_rawtokenvalue"}', "cx_rawtokenvalue"),
    ],
)
def test_secrets_are_scrubbed(text: str, secret: str) -> None:
    assert secret not in logs.scrub(text)
    assert secret not in json.dumps(_format(_record("%s", text, field=text)))


def test_configured_secrets_are_scrubbed_wherever_they_appear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTS_OPERATOR_TOKEN", "op-token-in-env-42")
    doc = _format(_record("operator said op-token-in-env-42", extra=["op-token-in-env-42"]))
    assert "op-token-in-env-42" not in json.dumps(doc)
    logs.add_secret("short")  # too short to scrub safely: ignored
    assert logs.scrub("short words") == "short words"


def test_uvicorn_access_lines_get_fields_and_no_link_token() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/login/secretLinkToken123456",
        "1.1",
        303,
        name="uvicorn.access",
    )
    doc = _format(record)
    assert doc["method"] == "GET" and doc["status"] == 303 and doc["path"] == "/login/***"
    assert "secretLinkToken" not in json.dumps(doc)


def test_config_dict_covers_uvicorn_and_quiets_httpx() -> None:
    config = logs.config_dict("warning")
    loggers = config["loggers"]
    assert {"uvicorn", "uvicorn.error", "uvicorn.access"} <= set(loggers)
    assert loggers["httpx"]["level"] == "WARNING" and config["root"]["level"] == "WARNING"
    assert config["formatters"]["json"]["()"] == "connects.logs.JsonFormatter"
