"""Settings, from the environment (``CONNECTS_*``) with safe defaults for a laptop."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connects.domain.plans import DEFAULT_PLANS, Catalog

PLACEHOLDER = "change-me"


class Settings(BaseSettings):
    """Everything the composition root needs; nothing connects anywhere at import."""

    model_config = SettingsConfigDict(env_prefix="CONNECTS_", extra="ignore")

    mode: Literal["dev", "production"] = "dev"
    database_url: str = "sqlite:///./connects.db"
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
    # Log level of ``connects serve`` and ``connects worker`` (JSON lines, connects.logs).
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.mode == "production":
            if self.clock == "simulated":
                raise ValueError("the simulated clock is never used in production (R33)")
            if self.secret_key == PLACEHOLDER or len(self.secret_key) < 16:
                raise ValueError("set CONNECTS_SECRET_KEY (16+ characters) in production")
        return self

    def catalog(self) -> Catalog:
        """The plan catalog: ``plans_file`` (TOML ``[plans.<id>]`` tables) or R7's defaults."""
        if self.plans_file is None:
            return Catalog.from_mapping(DEFAULT_PLANS)
        with self.plans_file.open("rb") as fh:
            raw = tomllib.load(fh)
        return Catalog.from_mapping(raw.get("plans", raw))
