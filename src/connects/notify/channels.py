"""Channels: where notifications go, and the one seam that sends them (R28, R29).

:class:`Notifier` is the port: ``send(channel, event)`` returns when the channel took
the message and raises :class:`DeliveryFailed` otherwise. :class:`LiveNotifier` is the
real adapter: Telegram, Slack, Discord and e-mail go through Apprise (the URL is built
by :func:`apprise_url`); the generic webhook is a JSON POST through httpx, signed with
HMAC-SHA256 of the exact body under the channel's own secret
(``X-Connects-Signature: sha256=<hex>``) and carrying the stable event id
(``X-Connects-Event-Id``) so receivers can drop repeats of an at-least-once delivery.

Targets as people paste them:

========  ==========================================================================
kind      target
========  ==========================================================================
telegram  ``<bot_token>/<chat_id>`` or ``tgram://<bot_token>/<chat_id>``
slack     ``https://hooks.slack.com/services/T.../B.../XXXX`` or ``slack://...``
discord   ``https://discord.com/api/webhooks/<id>/<token>`` or ``discord://...``
email     ``mailto://[user:pass@]smtp.host[:port]?to=you@example.com&from=...``
          (``mailtos://`` for TLS); the SMTP server comes from the target
webhook   ``https://your.service/connects-hook``
========  ==========================================================================
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from connects.domain.errors import InvalidRequest
from connects.domain.vocabulary import ChannelKind
from connects.notify import addresses
from connects.notify.messages import Message, render

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Connects-Signature"
EVENT_ID_HEADER = "X-Connects-Event-Id"
EVENT_KIND_HEADER = "X-Connects-Event"
MASK = "…"

_TELEGRAM = re.compile(r"^(?:tgram://)?(?P<token>\d+:[A-Za-z0-9_-]+)/(?P<chats>[^?#\s]+)$")
_SLACK_HOOK = re.compile(
    r"^https://hooks\.slack\.com/services/(?P<a>[A-Z0-9]+)/(?P<b>[A-Z0-9]+)/(?P<c>[A-Za-z0-9]+)/?$"
)
_DISCORD_HOOK = re.compile(
    r"^https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/(?P<id>\d+)/(?P<token>[A-Za-z0-9_.-]+)/?$"
)


class DeliveryFailed(Exception):
    """The channel did not take the message; the outbox retries later."""


@dataclass(frozen=True, slots=True, repr=False)
class Channel:
    """A channel with its secrets in the clear: only ever held in memory to send."""

    id: str
    account_id: str
    kind: str
    target: str
    secret: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident (R28)
        hint = mask(self.kind, self.target)
        return f"Channel(id={self.id!r}, kind={self.kind!r}, target={hint!r})"


@dataclass(frozen=True, slots=True)
class Event:
    """An outbox event as it is sent: its id is the stable id receivers dedupe on (R29)."""

    id: str
    account_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    account_name: str | None = None

    def message(self) -> Message:
        return render(self.kind, self.payload, self.account_name)


class Notifier(ABC):
    """The port every delivery goes through; tests substitute a subclass."""

    @abstractmethod
    def send(self, channel: Channel, event: Event) -> None:
        """Deliver ``event`` to ``channel``; raise :class:`DeliveryFailed` if it did not take it."""


# -- targets ----------------------------------------------------------------------


def normalize_target(kind: str, target: object, *, allow_private: bool = False) -> str:
    """The target in canonical form, or ``invalid_request`` naming ``target``.

    A webhook's host must be a public address (R50) unless ``allow_private`` (the
    operator's ``CONNECTS_ALLOW_PRIVATE_WEBHOOKS``)."""
    try:
        ChannelKind(kind)
    except ValueError:
        raise InvalidRequest(
            f"kind must be one of {', '.join(ChannelKind)}", field="kind"
        ) from None
    if not isinstance(target, str) or not target.strip() or len(target) > 2000:
        raise InvalidRequest("target is required (at most 2000 characters)", field="target")
    target = target.strip()
    if kind == ChannelKind.WEBHOOK:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest("a webhook target is an http(s) URL", field="target")
        if not allow_private:
            try:
                addresses.check_target(target)
            except addresses.NotPublic:
                raise InvalidRequest(
                    "a webhook target must be a public address: loopback, private, "
                    "link-local and unspecified addresses are refused",
                    field="target",
                ) from None
        return target
    if kind == ChannelKind.TELEGRAM:
        m = _TELEGRAM.match(target)
        if not m:
            raise InvalidRequest(
                "a telegram target is <bot_token>/<chat_id> (or a tgram:// URL)", field="target"
            )
        target = f"tgram://{m['token']}/{m['chats']}"
    elif kind == ChannelKind.SLACK:
        if not (_SLACK_HOOK.match(target) or target.startswith("slack://")):
            raise InvalidRequest(
                "a slack target is an incoming-webhook URL https://hooks.slack.com/services/...",
                field="target",
            )
    elif kind == ChannelKind.DISCORD:
        if not (_DISCORD_HOOK.match(target) or target.startswith("discord://")):
            raise InvalidRequest(
                "a discord target is a webhook URL https://discord.com/api/webhooks/<id>/<token>",
                field="target",
            )
    elif kind == ChannelKind.EMAIL and urlsplit(target).scheme not in ("mailto", "mailtos"):
        raise InvalidRequest(
            "an email target is a mailto:// or mailtos:// URL naming the SMTP server, "
            "e.g. mailtos://user:pass@smtp.example.com:587?to=ops@example.com",
            field="target",
        )
    if _instantiate(apprise_url(Channel("", "", kind, target))) is None:
        raise InvalidRequest(f"this {kind} target is not valid", field="target")
    return target


def _tail(secret: str) -> str:
    return secret[-4:] if len(secret) >= 12 else ""


def mask(kind: str, target: str) -> str:
    """A hint that names the channel without giving the secret away (R28)."""
    if kind == ChannelKind.TELEGRAM:
        m = _TELEGRAM.match(target)
        return f"tgram://{MASK}{_tail(m['token'])}/{m['chats']}" if m else f"tgram://{MASK}"
    if kind == ChannelKind.SLACK:
        m = _SLACK_HOOK.match(target)
        if m:
            return f"https://hooks.slack.com/{MASK}/{MASK}{_tail(m['c'])}"
        return f"slack://{MASK}{_tail(target)}"
    if kind == ChannelKind.DISCORD:
        m = _DISCORD_HOOK.match(target)
        if m:
            return f"https://discord.com/api/webhooks/{m['id']}/{MASK}{_tail(m['token'])}"
        return f"discord://{MASK}{_tail(target)}"
    parts = urlsplit(target)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    if kind == ChannelKind.EMAIL:
        to = ",".join(parse_qs(parts.query).get("to", [])) or (
            f"{parts.username}@{host}" if parts.username else ""
        )
        return f"{parts.scheme}://{host}{port}?to={to}"
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    tail = _tail(rest) if len(rest) > 1 else ""
    return (
        f"{parts.scheme}://{host}{port}/{MASK}{tail}" if tail else f"{parts.scheme}://{host}{port}/"
    )


def redact(text: str, channel: Channel | None) -> str:
    """``text`` with the channel's secrets (and their long parts) blanked out (R28)."""
    if channel is None:
        return text
    pieces: set[str] = {channel.target}
    if channel.secret:
        pieces.add(channel.secret)
    for piece in list(pieces):
        pieces.update(p for p in re.split(r"[/:?&=@]+", piece) if len(p) >= 8)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def apprise_url(channel: Channel) -> str:
    """The Apprise URL for a Telegram, Slack, Discord or e-mail channel."""
    target = channel.target
    if channel.kind == ChannelKind.SLACK:
        m = _SLACK_HOOK.match(target)
        return f"slack://{m['a']}/{m['b']}/{m['c']}" if m else target
    if channel.kind == ChannelKind.DISCORD:
        m = _DISCORD_HOOK.match(target)
        return f"discord://{m['id']}/{m['token']}" if m else target
    if channel.kind in (ChannelKind.TELEGRAM, ChannelKind.EMAIL):
        return target
    raise ValueError(f"{channel.kind} channels are not sent through Apprise")


# -- Apprise ------------------------------------------------------------------------

_LOADED = threading.Lock()
_loaded = False


def _apprise() -> Any:
    """The apprise module, its plugins loaded once (quietly: one imports ``imghdr``)."""
    global _loaded
    import apprise

    with _LOADED:
        if not _loaded:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                apprise.Apprise.instantiate("json://localhost")
            _loaded = True
    return apprise


def _instantiate(url: str) -> Any:
    return _apprise().Apprise.instantiate(url)


# -- the webhook ----------------------------------------------------------------------


def webhook_body(event: Event) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``."""
    message = event.message()
    doc = {
        "id": event.id,
        "kind": event.kind,
        "account_id": event.account_id,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z")
        if event.created_at
        else None,
        "data": event.payload,
        "title": message.title,
        "text": message.body,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body under the channel's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header)


UNREACHABLE = "the receiver could not be reached"


def _pinned(url: str, allow_private: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` aimed at one checked address of its host: the URL to request, the
    ``Host`` header and the TLS server name to keep (R50).

    Every address the host resolves to must be public (unless ``allow_private``), and
    the connection goes to the one checked, so a second lookup cannot swap it.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = (
            addresses.resolve(host, port)
            if allow_private
            else addresses.public_addresses(host, port)
        )
    except (addresses.NotPublic, addresses.Unresolved):
        log.info("webhook not sent: %s is not a public address or does not resolve", host)
        raise DeliveryFailed(UNREACHABLE) from None
    address = found[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = f"{host}:{parts.port}" if parts.port else host
    if ":" in host:  # an IPv6 literal keeps its brackets in the Host header
        host_header = f"[{host}]" + (f":{parts.port}" if parts.port else "")
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


class LiveNotifier(Notifier):
    """Sends for real: Apprise for chat and e-mail, httpx for the signed webhook.

    Webhooks go only to public addresses, checked after DNS resolution at each send
    (R50), unless ``allow_private`` (``CONNECTS_ALLOW_PRIVATE_WEBHOOKS``)."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
        allow_private: bool = False,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._http = http
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        # One pooled client (building one per send costs a TLS context each time).
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self.timeout, follow_redirects=False)
            return self._http

    def send(self, channel: Channel, event: Event) -> None:
        if channel.kind == ChannelKind.WEBHOOK:
            self._post_webhook(channel, event)
        else:
            self._notify_apprise(channel, event)

    def _post_webhook(self, channel: Channel, event: Event) -> None:
        body = webhook_body(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "connects-notify/1",
            EVENT_ID_HEADER: event.id,
            EVENT_KIND_HEADER: event.kind,
        }
        if channel.secret:
            headers[SIGNATURE_HEADER] = sign(channel.secret, body)
        url, host, extensions = _pinned(channel.target, self.allow_private)
        try:
            response = self._client().post(
                url, content=body, headers={**headers, **host}, extensions=extensions
            )
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            # Which failure it was (refused, reset, not HTTP, timed out) would map the
            # receiver's network for whoever chose the target: only the operator's log
            # says (R50).
            log.info(
                "webhook to %s failed: %s", mask(channel.kind, channel.target), type(exc).__name__
            )
            raise DeliveryFailed(UNREACHABLE) from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"the receiver answered HTTP {response.status_code}")

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _notify_apprise(self, channel: Channel, event: Event) -> None:
        apprise = _apprise()
        service = apprise.Apprise()
        if not service.add(apprise_url(channel)):
            raise DeliveryFailed(f"the {channel.kind} target is not a valid Apprise URL")
        message = event.message()
        with apprise.LogCapture(level=apprise.logging.WARNING) as log:
            ok = service.notify(title=message.title, body=message.body)
        if not ok:
            detail = " ".join(str(log.getvalue()).split())[-300:] or "no detail"
            raise DeliveryFailed(f"{channel.kind} did not take the message: {detail}")
