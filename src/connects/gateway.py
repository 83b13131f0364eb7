"""The payment gateway seam, and the built-in simulated gateway.

Connects never sees card numbers: a billing method is added from a gateway token
(Stripe-style), and the gateway gives back an opaque reference, the brand and the last
four digits. Charges carry an idempotency key, so a retried charge (after a crash, a
time-out, a second worker) is never taken twice.

The simulated gateway knows Stripe's test tokens:

=====================================  ==========  =====  ==========================
token                                  brand       last4  charging it
=====================================  ==========  =====  ==========================
``tok_visa``                           visa        4242   succeeds
``tok_mastercard``                     mastercard  4444   succeeds
``tok_amex``                           amex        8431   succeeds
``tok_chargeDeclined``                 visa        0002   declines: card_declined
``tok_chargeDeclinedInsufficientFunds`` visa       9995   declines: insufficient_funds
``tok_chargeDeclinedExpiredCard``      visa        0069   declines: expired_card
``tok_chargeTimeout``                  visa        0119   times out once, then succeeds
=====================================  ==========  =====  ==========================

``tok_chargeTimeout`` is not Stripe's: it is the gateway that takes the money and then
does not answer in time. The first charge with an idempotency key is recorded as taken
and raises :class:`GatewayUnavailable`; every later call with that key answers
``succeeded`` with the same charge, as a real gateway's idempotent retry would. It
exercises the pending purchase that :func:`connects.services.purchase_steps.resume_pending`
(and the top-up runner) finish with the same key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from connects.db.engine import Database
from connects.db.schema import gateway_charges
from connects.db.sql import insert_ignore
from connects.domain.clock import Clock
from connects.domain.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class CardInfo:
    ref: str
    brand: str
    last4: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    ok: bool
    charge_id: str
    decline_code: str | None = None


class GatewayUnavailable(Exception):
    """The gateway did not answer (time-out, network): the charge may or may not exist.

    Callers keep the purchase pending and retry later with the same idempotency key.
    """


class PaymentGateway(Protocol):
    def attach(self, token: str) -> CardInfo:
        """Turn a one-time token into a stored payment method."""
        ...

    def charge(
        self, *, method_ref: str, amount_cents: int, currency: str, idempotency_key: str
    ) -> ChargeResult:
        """Charge the method; the same idempotency key always gives the same result."""
        ...


_TEST_TOKENS: dict[str, tuple[str, str, str | None]] = {
    "tok_visa": ("visa", "4242", None),
    "tok_mastercard": ("mastercard", "4444", None),
    "tok_amex": ("amex", "8431", None),
    "tok_chargeDeclined": ("visa", "0002", "card_declined"),
    "tok_chargeDeclinedInsufficientFunds": ("visa", "9995", "insufficient_funds"),
    "tok_chargeDeclinedExpiredCard": ("visa", "0069", "expired_card"),
    "tok_chargeTimeout": ("visa", "0119", None),
}
# Tokens whose first charge for a key is taken but answered by a time-out.
_TIMES_OUT = frozenset({"tok_chargeTimeout"})


class SimulatedGateway:
    """A gateway with Stripe's test tokens, keeping its own book of charges.

    Its book is a table in the same database, written in its own transaction (as an
    outside gateway's would be), keyed by the idempotency key.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def attach(self, token: str) -> CardInfo:
        if token not in _TEST_TOKENS:
            raise InvalidRequest(
                "unknown payment token (the simulated gateway takes Stripe test tokens such "
                "as tok_visa or tok_chargeDeclined)",
                field="token",
                known=sorted(_TEST_TOKENS),
            )
        brand, last4, _ = _TEST_TOKENS[token]
        return CardInfo(ref=f"pm_sim_{os.urandom(6).hex()}_{token}", brand=brand, last4=last4)

    @staticmethod
    def _token(method_ref: str) -> str:
        return method_ref.split("_", 3)[-1]

    @classmethod
    def _decline_code(cls, method_ref: str) -> str | None:
        return _TEST_TOKENS.get(cls._token(method_ref), ("", "", "card_declined"))[2]

    def charge(
        self, *, method_ref: str, amount_cents: int, currency: str, idempotency_key: str
    ) -> ChargeResult:
        now = self.clock.now()  # before the transaction: the clock may be a database read
        # The gateway is another system: its book commits on its own, never with the
        # keyed request that asked for the charge (connects.db.request).
        with self.db.alone(), self.db.begin() as conn:
            # The first call with a key decides the outcome; a retry (or a concurrent
            # duplicate) finds the row and answers the same.
            first = insert_ignore(
                conn,
                gateway_charges,
                {
                    "idempotency_key": idempotency_key,
                    "charge_id": f"ch_sim_{os.urandom(8).hex()}",
                    "method_ref": method_ref,
                    "amount_cents": amount_cents,
                    "currency": currency,
                    "outcome": self._decline_code(method_ref) or "succeeded",
                    "created_at": now,
                },
            )
            row = conn.execute(
                select(gateway_charges).where(gateway_charges.c.idempotency_key == idempotency_key)
            ).one()
            outcome, charge_id = row.outcome, row.charge_id
        if first and self._token(method_ref) in _TIMES_OUT:
            raise GatewayUnavailable(f"the gateway timed out (charge {idempotency_key} was taken)")
        ok = outcome == "succeeded"
        return ChargeResult(
            ok=ok, charge_id=str(charge_id), decline_code=None if ok else str(outcome)
        )

    def charges_for(self, idempotency_key: str) -> int:
        """How many charges the book holds for a key (tests: never more than one)."""
        with self.db.read() as conn:
            return len(
                conn.execute(
                    select(gateway_charges.c.charge_id).where(
                        gateway_charges.c.idempotency_key == idempotency_key
                    )
                ).all()
            )
