"""Channels: where notifications go, and the one seam that sends them (R28, R29).

:class:`Notifier` is the port: ``send(channel, event, at=...)`` returns when the
channel took the message and raises :class:`DeliveryFailed` otherwise. :class:`LiveNotifier`
is the real adapter: Telegram, Slack and Discord go through Apprise (the URL is built by
:func:`apprise_url`); e-mail goes to the operator's SMTP server
(:mod:`connects.notify.mail`, R47); the generic webhook is a JSON POST through httpx,
signed as Standard Webhooks v1 (:mod:`connects.notify.webhooks`, R46).

Targets as people paste them:

========  ==========================================================================
kind      target
========  ==========================================================================
telegram  ``<bot_token>/<chat_id>`` or ``tgram://<bot_token>/<chat_id>``
slack     ``https://hooks.slack.com/services/T.../B.../XXXX`` or ``slack://...``
discord   ``https://discord.com/api/webhooks/<id>/<token>`` or ``discord://...``
email     ``ops@example.com``: an address; the SMTP server and the sender are the
          operator's (``CONNECTS_SMTP_URL``, ``CONNECTS_MAIL_FROM``). A channel made
          before R47 keeps its ``mailto://`` / ``mailtos://`` URL and is sent as before
          (through Apprise, to the server that URL names).
webhook   ``https://your.service/connects-hook``
========  ==========================================================================
"""

from __future__ import annotations

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

from connects.domain.emails import email_address
from connects.domain.errors import InvalidRequest
from connects.domain.vocabulary import ChannelKind
from connects.notify import addresses, webhooks
from connects.notify.mail import MailFailed, MailServer
from connects.notify.messages import Message, render

log = logging.getLogger(__name__)

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
    def send(self, channel: Channel, event: Event, *, at: datetime) -> None:
        """Deliver ``event`` to ``channel`` at ``at`` (the one clock, R33: a webhook's
        timestamp, an e-mail's date); raise :class:`DeliveryFailed` if it did not take it."""

    def can_send(self, kind: str) -> bool:
        """Whether channels of ``kind`` can be sent at all here (e-mail needs a server)."""
        return True


def is_address(target: str) -> bool:
    """Whether an e-mail channel's target is an address (R47), not a ``mailto://`` URL
    of a channel made before."""
    return "://" not in target


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
    elif kind == ChannelKind.EMAIL:
        return email_address(
            target, "target", "an email target is an address, e.g. ops@example.com (R47)"
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
    if kind == ChannelKind.EMAIL and is_address(target):
        return target
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
    """The Apprise URL for a Telegram, Slack or Discord channel (or an e-mail channel
    made before R47, whose target is its own ``mailto://`` URL)."""
    target = channel.target
    if channel.kind == ChannelKind.SLACK:
        m = _SLACK_HOOK.match(target)
        return f"slack://{m['a']}/{m['b']}/{m['c']}" if m else target
    if channel.kind == ChannelKind.DISCORD:
        m = _DISCORD_HOOK.match(target)
        return f"discord://{m['id']}/{m['token']}" if m else target
    if channel.kind == ChannelKind.TELEGRAM or (
        channel.kind == ChannelKind.EMAIL and not is_address(target)
    ):
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


# -- the live notifier ----------------------------------------------------------------

UNREACHABLE = "the receiver could not be reached"


class LiveNotifier(Notifier):
    """Sends for real: Apprise for chat, the operator's SMTP server for e-mail (``mail``,
    R47; None: no e-mail), httpx for the signed webhook (R46).

    Webhooks go only to public addresses, checked after DNS resolution at each send
    (R50), unless ``allow_private`` (``CONNECTS_ALLOW_PRIVATE_WEBHOOKS``)."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
        allow_private: bool = False,
        mail: MailServer | None = None,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.mail = mail
        self._http = http
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        # One pooled client (building one per send costs a TLS context each time).
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self.timeout, follow_redirects=False)
            return self._http

    def can_send(self, kind: str) -> bool:
        return kind != ChannelKind.EMAIL or self.mail is not None

    def send(self, channel: Channel, event: Event, *, at: datetime) -> None:
        if channel.kind == ChannelKind.WEBHOOK:
            self._post_webhook(channel, event, at)
        elif channel.kind == ChannelKind.EMAIL and is_address(channel.target):
            self._mail(channel, event, at)
        else:
            self._notify_apprise(channel, event)

    def _mail(self, channel: Channel, event: Event, at: datetime) -> None:
        if self.mail is None:
            raise DeliveryFailed("e-mail is not set up on this server (CONNECTS_SMTP_URL)")
        message = event.message()
        domain = self.mail.sender_address.rsplit("@", 1)[-1]
        try:
            self.mail.send(
                channel.target,
                message.title,
                message.body,
                at=at,
                message_id=f"<{event.id}.{channel.id}@{domain}>",
                timeout=self.timeout,
            )
        except MailFailed as exc:
            raise DeliveryFailed(str(exc)) from None

    def _post_webhook(self, channel: Channel, event: Event, at: datetime) -> None:
        body = webhooks.body(
            event.id, event.kind, event.account_id, event.created_at, event.payload
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "connects-notify/1",
            **webhooks.headers(channel.secret, event.id, at, body),
        }
        try:
            url, host, extensions = addresses.pinned(channel.target, self.allow_private)
        except (addresses.NotPublic, addresses.Unresolved):
            log.info(
                "webhook not sent: %s is not a public address or does not resolve",
                mask(channel.kind, channel.target),
            )
            raise DeliveryFailed(UNREACHABLE) from None
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
