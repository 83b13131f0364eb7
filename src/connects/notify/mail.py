"""E-mail channels (R47): an address as the target; the SMTP server and the sender are
the operator's.

``CONNECTS_SMTP_URL`` names the server, in one of three forms:

=======================================================  ==============================
``smtps://[user:password@]host[:port]``                   TLS from the first byte
                                                          (port 465 by default)
``smtp://[user:password@]host[:port]?starttls=true``      plain connection upgraded with
                                                          STARTTLS, required (port 587)
``smtp://[user:password@]host[:port]``                    no encryption (port 25): a
                                                          relay on the same machine or
                                                          a private network
=======================================================  ==============================

A user name or password holding ``:``, ``@``, ``/`` or ``%`` is percent-encoded.
``CONNECTS_MAIL_FROM`` is the sender, ``alerts@example.com`` or
``Connects <alerts@example.com>``. Without ``CONNECTS_SMTP_URL`` there is no e-mail:
adding an e-mail channel answers 409 ``email_not_configured``.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from connects.domain.emails import email_address
from connects.domain.errors import InvalidRequest

Security = Literal["tls", "starttls", "none"]
_PORTS: dict[Security, int] = {"tls": 465, "starttls": 587, "none": 25}
# Headers up to the line limit of RFC 5322 unfolded (the Message-ID stays one token).
_POLICY = policy.SMTP.clone(max_line_length=998)
_YES, _NO = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


class MailFailed(Exception):
    """The server did not take the message; the text is safe to show the account."""


@dataclass(frozen=True, slots=True, repr=False)
class MailServer:
    """Where e-mail goes out, and as whom."""

    host: str
    port: int
    security: Security
    sender: str  # the From header, a display name allowed
    sender_address: str  # the envelope sender
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password (R28)
        return f"MailServer({self.security}://{self.host}:{self.port}, from={self.sender!r})"

    @classmethod
    def from_url(cls, url: str, sender: str | None) -> MailServer:
        """The server of a ``CONNECTS_SMTP_URL``; ``ValueError`` saying what is wrong."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                "CONNECTS_SMTP_URL is smtps://user:password@host[:port], "
                "smtp://user:password@host[:port]?starttls=true or smtp://host[:port]"
            )
        query = parse_qs(parts.query)
        unknown = sorted(set(query) - {"starttls"})
        if unknown:
            raise ValueError(f"CONNECTS_SMTP_URL: unknown option {', '.join(unknown)}")
        starttls = query.get("starttls", ["false"])[-1].lower()
        if starttls not in _YES + _NO:
            raise ValueError("CONNECTS_SMTP_URL: starttls is true or false")
        security: Security = "tls" if parts.scheme == "smtps" else "none"
        if starttls in _YES:
            if security == "tls":
                raise ValueError(
                    "CONNECTS_SMTP_URL: smtps:// is TLS already; starttls is for smtp://"
                )
            security = "starttls"
        try:
            port = parts.port or _PORTS[security]
        except ValueError:
            raise ValueError("CONNECTS_SMTP_URL: the port is a number") from None
        name, address = parseaddr(sender or "")
        try:
            address = email_address(address, field="CONNECTS_MAIL_FROM")
        except InvalidRequest:
            raise ValueError(
                "set CONNECTS_MAIL_FROM to the sender's address (alerts@example.com or "
                "Connects <alerts@example.com>) with CONNECTS_SMTP_URL"
            ) from None
        return cls(
            host=parts.hostname,
            port=port,
            security=security,
            sender=formataddr((name, address)),
            sender_address=address,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def send(
        self, to: str, subject: str, text: str, *, at: datetime, message_id: str, timeout: float
    ) -> None:
        """Send one plain-text message to ``to``; :class:`MailFailed` if it was not taken.

        ``at`` (the one clock, R33) is its Date; ``message_id`` stays the same on every
        retry, so a mail client can drop a repeat (R29)."""
        message = EmailMessage(policy=_POLICY)
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(at)
        message["Message-ID"] = message_id
        message.set_content(text)
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message, from_addr=self.sender_address, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused:
            raise MailFailed(f"the mail server refused the address {to}") from None
        except smtplib.SMTPAuthenticationError:
            raise MailFailed("the mail server refused this server's sign-in") from None
        except smtplib.SMTPResponseException as exc:
            raise MailFailed(f"the mail server answered {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError):
            raise MailFailed("the mail server could not be reached") from None
