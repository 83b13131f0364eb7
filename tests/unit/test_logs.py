"""connects.logs: one JSON object per line, extra fields kept, secrets scrubbed."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

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
        ("smtps://alerts%40x.io:hunter2pass@smtp.example.com", "hunter2pass"),  # R47
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


class _Lines(logging.Handler):
    """Each record as :class:`logs.JsonFormatter` writes it, and its raw message."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[str] = []
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(record.getMessage())
        self.lines.append(self.format(record))


def test_apprise_debug_lines_carry_no_slack_or_discord_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # R51: apprise and urllib3 log the webhook's path (with its token) at debug level
    import socket

    from connects.notify.channels import Channel, DeliveryFailed, Event, LiveNotifier

    def no_dns(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # nothing leaves this machine
    slack_token, discord_token = "s3cr3tT0kenValue42", "AbCdEf-GhIjKlMnOpQrStUv_wxyz0123"
    targets = {
        "slack": f"https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/{slack_token}",
        "discord": f"https://discord.com/api/webhooks/112233445566778899/{discord_token}",
    }
    event = Event(id="evt_1", account_id="acct_1", kind="channel_test", payload={"test": True})
    handler = _Lines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        for kind, target in targets.items():
            with pytest.raises(DeliveryFailed):
                LiveNotifier(timeout=1).send(
                    Channel("chn_1", "acct_1", kind, target), event, at=datetime.now(UTC)
                )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    raw = "\n".join(handler.raw)
    assert slack_token in raw and discord_token in raw  # the leak this guards against
    out = "\n".join(handler.lines)
    assert slack_token not in out and discord_token not in out
    assert "B0ABCDEF2" not in out


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("with url: /services/T0ABCDEF1/B0ABCDEF2/s3cr3tT0kenValue42 (Caused by", "s3cr3tT0ken"),
        (
            'https://hooks.slack.com:443 "POST /services/T01/B02/zzSecretZZ HTTP/1.1" 200 2',
            "zzSecret",
        ),
        ('"POST /api/webhooks/1122334455/AbCdEf-Gh_ij.kl HTTP/1.1" 204 0', "AbCdEf-Gh"),
        ("Authorization: xoxb-1234-5678-abcdefSECRET", "abcdefSECRET"),
    ],
)
def test_webhook_paths_as_urllib3_logs_them_are_scrubbed(text: str, secret: str) -> None:
    # R51
    assert secret not in logs.scrub(text)
