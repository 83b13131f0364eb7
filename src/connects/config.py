"""Settings, from the environment (``CONNECTS_*``) with safe defaults for a laptop."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connects.db.urls import sqlalchemy_url
from connects.domain.boosts import DEFAULT_AUCTION_DAYS, DEFAULT_MAX_BID
from connects.domain.plans import DEFAULT_MAX_PURCHASE, DEFAULT_PLANS, Catalog
from connects.notify.mail import MailServer

PLACEHOLDER = "change-me"


class Settings(BaseSettings):
    """Everything the composition root needs; nothing connects anywhere at import."""

    # A refused setting is named, never echoed: it may be a password or a key.
    model_config = SettingsConfigDict(
        env_prefix="CONNECTS_", extra="ignore", hide_input_in_errors=True
    )

    mode: Literal["dev", "production"] = "dev"
    # A SQLAlchemy URL; on PostgreSQL it may list several servers as libpq does
    # (postgresql+psycopg://u@h1:5433,h2:5434/db?target_session_attrs=read-write), kept
    # in the form SQLAlchemy reads (connects.db.urls).
    database_url: str = "sqlite:///./connects.db"
    # PostgreSQL failover: how long a read or a keyed write (R31) that lost its server
    # is tried again before it answers 503 (connects.db.failover); 0: never.
    db_failover_seconds: float = Field(default=15.0, ge=0)
    # PostgreSQL is reached through a pooler in transaction mode (PgBouncer
    # pool_mode=transaction): no server-side prepared statements (connects.db.engine).
    db_transaction_pooler: bool = False
    # PostgreSQL: a read replica (a streaming standby) for the history and its CSV
    # export; a read goes there only once it has replayed every write the primary has
    # flushed, else the primary answers (connects.db.replica). Unset: the primary.
    read_database_url: str | None = None
    db_pool_size: int = 10
    # PostgreSQL: connections opened past ``db_pool_size`` in a burst (closed when
    # returned); None: twice the pool.
    db_pool_overflow: int | None = None
    # ``connects serve`` and ``connects worker``: how long to wait at start-up for a
    # database that does not answer yet (restarting), retrying with a growing pause,
    # before exiting non-zero; 0 tries once (connects.db.wait).
    db_startup_timeout: float = 30.0
    clock: Literal["system", "simulated"] = "system"
    operator_token: str | None = None
    # The auto top-up service's bearer token: it acts as the business manager
    # ``topup-manager`` and may do only what an account granted it (R6).
    business_manager_token: str | None = None
    # ``connects serve``: run the background work (cycles, expiry, pending purchases)
    # in the API process every this many seconds; 0 turns it off.
    background_interval_seconds: float = 0
    secret_key: str = PLACEHOLDER
    # Webhook channels may target loopback, private, link-local and unspecified
    # addresses (R50): for development and tests only; off, they are refused when a
    # channel is added and again after DNS resolution at every delivery.
    allow_private_webhooks: bool = False
    # E-mail channels (R47): the SMTP server (smtps://user:password@host[:465],
    # smtp://user:password@host[:587]?starttls=true, or smtp://host[:25] unencrypted)
    # and the sender (alerts@example.com or "Connects <alerts@example.com>"); see
    # connects.notify.mail. Unset: no e-mail, adding an e-mail channel is refused.
    smtp_url: SecretStr | None = None  # holds the SMTP password
    mail_from: str | None = None
    plans_file: Path | None = None
    grant_sync_delay_seconds: int = 0
    # R42: after a declined auto top-up the card is tried again this many seconds
    # later, then twice as long after each further decline; the third in a row pauses.
    topup_retry_seconds: int = 3600
    # Rate limits on everything that hands out a token (connects.services.ratelimit),
    # counted in the database so they hold across processes; 0 turns one off. Per
    # window: sign-ups (POST /v1/users) per e-mail address and per client address, and
    # failed dashboard sign-ins (unknown or used links, the demo sign-in) per address.
    signin_limit_window_seconds: int = 900
    signin_limit_per_email: int = 5
    signin_limit_per_ip: int = 20
    signup_limit_per_ip: int = 500
    # Peers whose X-Forwarded-For (and X-Forwarded-Proto) name the client: comma-separated
    # addresses or CIDRs of your reverse proxies. Default none: the client is the peer,
    # so nobody picks the address the rate limits count under.
    trusted_proxies: str = ""
    # Stored idempotent answers (R31) are deleted this many hours after their request
    # (R51; the due job ``idempotency_purged``): a retry later than that runs anew.
    idempotency_retention_hours: int = 24
    # The most Connects one purchase buys (API, dashboard, the business manager, auto
    # top-up); more is refused as ``invalid_request`` naming ``quantity`` (R43).
    max_purchase: int = Field(default=DEFAULT_MAX_PURCHASE, ge=1)
    # The base of every link the product prints (sign-in links), e.g. the public
    # https://... address behind a proxy. None: the address ``connects serve`` listens on
    # (connects.services.runtime).
    base_url: str | None = None
    # R35: the highest boost bid, and how long after posting a job's auction closes.
    boost_max_bid: int = Field(default=DEFAULT_MAX_BID, ge=1)
    auction_days: int = Field(default=DEFAULT_AUCTION_DAYS, ge=1)
    # Log level of ``connects serve`` and ``connects worker`` (JSON lines, connects.logs).
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("database_url")
    @classmethod
    def _multi_host(cls, url: str) -> str:
        return sqlalchemy_url(url)

    @model_validator(mode="after")
    def _check_mail(self) -> Settings:
        self.mail_server()  # a bad CONNECTS_SMTP_URL or CONNECTS_MAIL_FROM stops start-up
        return self

    def mail_server(self) -> MailServer | None:
        """The SMTP server e-mail channels are sent through, or None when unset (R47)."""
        if not self.smtp_url:
            return None
        return MailServer.from_url(self.smtp_url.get_secret_value(), self.mail_from)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.mode == "production":
            if self.clock == "simulated":
                raise ValueError("the simulated clock is never used in production (R33)")
            if self.secret_key == PLACEHOLDER or len(self.secret_key) < 16:
                raise ValueError("set CONNECTS_SECRET_KEY (16+ characters) in production")
        return self

    def catalog(self) -> Catalog:
        """The plan catalog: ``plans_file`` (TOML, see :meth:`Catalog.from_file_tables`)
        or R7's defaults."""
        if self.plans_file is None:
            return Catalog.from_mapping(DEFAULT_PLANS)
        with self.plans_file.open("rb") as fh:
            return Catalog.from_file_tables(tomllib.load(fh))
