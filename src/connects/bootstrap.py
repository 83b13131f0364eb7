"""The composition root: settings in, a wired :class:`Context` out."""

from __future__ import annotations

from connects.config import Settings
from connects.db.clockstore import DatabaseClock
from connects.db.engine import Database
from connects.db.migrate import upgrade
from connects.domain.clock import Clock, SystemClock
from connects.gateway import PaymentGateway, SimulatedGateway
from connects.services.context import Context


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    gateway: PaymentGateway | None = None,
    migrate: bool = False,
) -> Context:
    """Wire storage, the clock, the plan catalog and the payment gateway."""
    settings = settings or Settings()
    if migrate:
        upgrade(settings.database_url)
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    if clock is None:
        # The simulated clock lives in the database, so every process sees one time (R33).
        clock = DatabaseClock(db) if settings.clock == "simulated" else SystemClock()
    return Context(
        db=db,
        clock=clock,
        catalog=settings.catalog(),
        gateway=gateway or SimulatedGateway(db, clock),
        grant_sync_delay_seconds=settings.grant_sync_delay_seconds,
        secret_key=settings.secret_key,
    )
