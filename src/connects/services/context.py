"""What every handler needs, wired once by ``connects.bootstrap``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from connects.db.engine import Database
from connects.domain.boosts import DEFAULT_AUCTION_DAYS, DEFAULT_MAX_BID
from connects.domain.clock import Clock
from connects.domain.commands import Command
from connects.domain.events import Event
from connects.domain.plans import DEFAULT_MAX_PURCHASE, Catalog
from connects.gateway import PaymentGateway
from connects.notify.channels import LiveNotifier, Notifier
from connects.services.batching import Combiner

R = TypeVar("R")


class Bus(Protocol):
    """What the context asks of :class:`connects.services.messagebus.MessageBus`."""

    def handle(self, ctx: Context, command: Command[R]) -> R: ...

    def publish(self, ctx: Context, events: Iterable[Event]) -> None: ...


@dataclass
class Context:
    db: Database
    clock: Clock
    catalog: Catalog
    gateway: PaymentGateway
    grant_sync_delay_seconds: int = 0
    # R42: the wait before a declined auto top-up is tried again (doubling after each).
    topup_retry_seconds: int = 3600
    # Encrypts notification channel secrets (connects.notify.crypto); dev placeholder.
    secret_key: str = "change-me"
    # Webhook channels may target loopback and private addresses (R50; tests, dev).
    allow_private_webhooks: bool = False
    # How long stored idempotent answers are kept (R51; connects.services.retention).
    idempotency_retention_hours: int = 24
    # The most Connects one purchase buys, on every path (R43).
    max_purchase: int = DEFAULT_MAX_PURCHASE
    # R35: the highest boost bid; days from posting to the auction's close.
    boost_max_bid: int = DEFAULT_MAX_BID
    auction_days: int = DEFAULT_AUCTION_DAYS
    # Sends notifications (R28): the live channels unless a test wires another.
    notifier: Notifier = field(default_factory=LiveNotifier, repr=False, compare=False)
    # Group commit of proposals to one pool (connects.services.batching); per process.
    group_commit: bool = True
    batches: Combiner[Any] = field(default_factory=Combiner, repr=False, compare=False)

    # Commands to handlers, events to reactions; wired by connects.bootstrap.build.
    bus: Bus | None = field(default=None, repr=False, compare=False)

    def now(self) -> datetime:
        return self.clock.now()

    def handle(self, command: Command[R]) -> R:
        """Run ``command`` through its handler (see :mod:`connects.domain.commands`)."""
        assert self.bus is not None, "a Context is built by connects.bootstrap.build"
        return self.bus.handle(self, command)
