"""What every handler needs, wired once by ``connects.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from connects.db.engine import Database
from connects.domain.clock import Clock
from connects.domain.plans import Catalog
from connects.gateway import PaymentGateway


@dataclass
class Context:
    db: Database
    clock: Clock
    catalog: Catalog
    gateway: PaymentGateway
    grant_sync_delay_seconds: int = 0
    # Encrypts notification channel secrets (connects.notify.crypto); dev placeholder.
    secret_key: str = "change-me"
    hooks: list[object] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock.now()
