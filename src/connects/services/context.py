"""What every handler needs, wired once by ``connects.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connects.db.engine import Database
from connects.domain.clock import Clock
from connects.domain.plans import Catalog
from connects.gateway import PaymentGateway
from connects.services.batching import Combiner


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
    # Group commit of proposals to one pool (connects.services.batching); per process.
    group_commit: bool = True
    batches: Combiner[Any] = field(default_factory=Combiner, repr=False, compare=False)

    def now(self) -> datetime:
        return self.clock.now()
