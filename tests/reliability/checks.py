"""After the run: wait for the workers to drain, then hold the database to what the
clients were told, the ledger's invariants, the top-up limits and the gateway's book."""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select

from connects.db.schema import accounts as accounts_table
from connects.db.schema import (
    deliveries,
    entries,
    events,
    gateway_charges,
    jobs,
    proposals,
    purchases,
    topups,
)
from connects.services.context import Context
from tests.integration.notify_support import Webhook
from tests.reliability.cluster import OPERATOR_TOKEN
from tests.reliability.load import PER_MONTH, Acct, Http, Seen


def backlog(ctx: Context) -> dict[str, int]:
    """Work still waiting for a worker (all zero once drained)."""
    with ctx.db.read() as conn:

        def count(table: Any, *where: Any) -> int:
            return int(
                conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            )

        return {
            "purchases_pending": count(purchases, purchases.c.status == "pending"),
            "topups_pending": count(topups, topups.c.status == "pending"),
            "events_not_fanned_out": count(events, events.c.fanned_out_at.is_(None)),
            "deliveries_not_sent": count(deliveries, deliveries.c.status != "sent"),
        }


def drain(http: Http, ctx: Context, hook: Webhook, timeout: float) -> dict[str, int]:
    """Move the simulated clock on in small steps (past resume delays, leases and
    backoffs) until nothing is left to do and every delivered event has arrived."""
    deadline = time.monotonic() + timeout
    calm = 0
    left = backlog(ctx)
    while time.monotonic() < deadline:
        left = backlog(ctx)
        calm = calm + 1 if not any(left.values()) else 0
        if calm >= 2:
            return left
        http.call("POST", "/v1/admin/clock", OPERATOR_TOKEN, {"advance": "PT10M"})
        time.sleep(0.5)
    return left


def check_all(
    ctx: Context, seen: list[Seen], accounts: list[Acct], hook: Webhook
) -> tuple[list[str], dict[str, Any]]:
    """Every broken promise (empty when all hold) and the run's numbers."""
    problems: list[str] = []
    numbers: dict[str, Any] = {}
    with ctx.db.read() as conn:
        prop_rows = {r.id: r for r in conn.execute(select(proposals))}
        purchase_rows = {r.id: r for r in conn.execute(select(purchases))}
        job_status = dict(conn.execute(select(jobs.c.id, jobs.c.status)).all())
        entry_rows = conn.execute(
            select(entries.c.kind, entries.c.proposal_id, entries.c.purchase_id)
        ).all()
        topup_rows = conn.execute(select(topups)).all()
        charge_rows = conn.execute(select(gateway_charges)).all()
        event_rows = conn.execute(select(events.c.id, events.c.kind, events.c.payload)).all()
        delivered = conn.execute(select(deliveries.c.event_id, deliveries.c.status)).all()
        balances = dict(conn.execute(select(accounts_table.c.id, accounts_table.c.balance)).all())
    spend_entries = Counter(e.proposal_id for e in entry_rows if e.kind == "spend")
    purchase_entries = Counter(e.purchase_id for e in entry_rows if e.kind == "purchase")

    # Nothing lost: every 2xx a client saw is in the ledger.
    for s in seen:
        if s.status is None or s.status >= 300:
            continue
        if s.op == "spend":
            p = prop_rows.get(s.body["id"])
            if p is None or p.account_id != s.account_id:
                problems.append(f"proposal {s.body['id']} answered 201 is missing")
            elif spend_entries[p.id] != 1:
                problems.append(f"proposal {p.id}: {spend_entries[p.id]} spend entries")
        elif s.op.startswith("buy"):
            pur = purchase_rows.get(s.body["id"])
            if pur is None or pur.status != "succeeded":
                problems.append(f"purchase {s.body['id']} answered 201 is {pur and pur.status}")
            elif purchase_entries[pur.id] != 1:
                problems.append(f"purchase {pur.id}: {purchase_entries[pur.id]} credit entries")
        elif s.op == "cancel" and job_status.get(s.body["id"]) != "cancelled":
            problems.append(
                f"job {s.body['id']} answered cancelled is {job_status.get(s.body['id'])}"
            )

    # Nothing double-bought: one purchase request makes at most one purchase.
    asked: Counter[str] = Counter()
    for s in seen:
        if s.op.startswith("buy") and (s.status is None or s.status < 300):
            asked[s.account_id] += 1
    made: Counter[str] = Counter(p.account_id for p in purchase_rows.values() if p.topup_id is None)
    for a in accounts:
        ok = sum(
            1 for s in seen if s.op.startswith("buy") and s.account_id == a.id and s.status == 201
        )
        if not ok <= made[a.id] <= asked[a.id]:
            problems.append(
                f"account {a.id}: {made[a.id]} purchases made for {ok} answered 201 and "
                f"{asked[a.id]} not refused"
            )
    for pid, n in purchase_entries.items():
        if n != 1:
            problems.append(f"purchase {pid} credited {n} times")

    # Top-ups: one purchase each, charged at most once, within the month's limit.
    per_topup = Counter(p.topup_id for p in purchase_rows.values() if p.topup_id)
    for tid, n in per_topup.items():
        if n > 1:
            problems.append(f"top-up {tid} made {n} purchases")
    month_sum: defaultdict[tuple[str, str], int] = defaultdict(int)
    for t in topup_rows:
        if t.status == "succeeded":
            month_sum[(t.account_id, t.month)] += t.quantity
            pur = purchase_rows.get(t.purchase_id)
            if pur is None or pur.status != "succeeded" or pur.topup_id != t.id:
                problems.append(f"top-up {t.id} succeeded without its purchase")
        elif t.status == "pending":
            problems.append(f"top-up {t.id} still pending")
    for (acct, month), n in month_sum.items():
        if n > PER_MONTH:
            problems.append(f"account {acct} topped up {n} > {PER_MONTH} in {month}")

    # The gateway's book: every charge is a purchase's, succeeded charges are the
    # succeeded card purchases, one each (the key is the purchase id).
    charges_by_key = Counter(c.idempotency_key for c in charge_rows)
    for key, n in charges_by_key.items():
        if n > 1:
            problems.append(f"gateway charged key {key} {n} times")
        if key not in purchase_rows:
            problems.append(f"gateway charge {key} belongs to no purchase")
    card_ok = {
        p.id for p in purchase_rows.values() if p.pay_with == "card" and p.status == "succeeded"
    }
    charged_ok = {c.idempotency_key for c in charge_rows if c.outcome == "succeeded"}
    if card_ok != charged_ok:
        problems.append(
            f"card purchases succeeded without a charge: {sorted(card_ok - charged_ok)[:5]}; "
            f"charges with no succeeded purchase: {sorted(charged_ok - card_ok)[:5]}"
        )

    # Every event reached the webhook at least once (accounts all have one).
    limit_events = Counter(
        (json.loads(e.payload).get("account_id"), json.loads(e.payload).get("month"))
        for e in event_rows
        if e.kind == "monthly_limit_reached"
    )
    if limit_events and max(limit_events.values()) > 1:
        problems.append(f"monthly_limit_reached sent more than once: {limit_events.most_common(3)}")
    with_delivery = {d.event_id for d in delivered}
    received = set(hook.ids())
    no_delivery = [e.id for e in event_rows if e.id not in with_delivery]
    not_received = [e.id for e in event_rows if e.id not in received]
    if no_delivery:
        problems.append(f"{len(no_delivery)} events never fanned out to the webhook")
    if not_received:
        problems.append(f"{len(not_received)} events never reached the webhook: {not_received[:5]}")
    if any(d.status != "sent" for d in delivered):
        problems.append(f"deliveries not sent: {Counter(d.status for d in delivered)}")
    # R46: a request signed just before another process's clock move of more than 5
    # minutes is stale when it arrives; the receiver refuses it and the retry carries a
    # fresh timestamp. Anything else is a broken promise: a bad signature, or a
    # timestamp from the receiver's future (signed at a time not yet committed).
    stale = [r for r in hook.rejections if r == "Message timestamp too old"]
    refused = [r for r in hook.rejections if r != "Message timestamp too old"]
    if refused:
        problems.append(f"{len(refused)} webhook requests were refused: {refused[:3]}")
    numbers["webhook_stale_refused"] = len(stale)

    statuses = Counter((s.op, s.status) for s in seen)
    numbers.update(
        {
            "spends_201": statuses[("spend", 201)],
            "purchases_201": statuses[("buy_earnings", 201)] + statuses[("buy_card", 201)],
            "cancels_200": statuses[("cancel", 200)],
            "clock_moves": statuses[("clock", 200)],
            "gave_up": sum(1 for s in seen if s.status is None),
            "topups": dict(Counter(t.status for t in topup_rows)),
            "topup_connects": sum(month_sum.values()),
            "gateway_charges": len(charge_rows),
            "purchases_card_timeout_resumed": sum(
                1 for c in charge_rows if c.method_ref.endswith("tok_chargeTimeout")
            ),
            "balances": sorted(balances.values()),
            "ledger_entries": len(entry_rows),
            "entries_by_kind": dict(Counter(e.kind for e in entry_rows)),
            "events": len(event_rows),
            "events_by_kind": dict(Counter(e.kind for e in event_rows)),
            "webhook_receipts": len(hook.ids()),
            "webhook_duplicates": len(hook.ids()) - len(received),
        }
    )
    return problems, numbers


def report(result: dict[str, Any]) -> None:
    """Print a run's numbers; append them to ``CONNECTS_RELIABILITY_REPORT`` if set."""
    text = json.dumps(result, sort_keys=True)
    print(text)
    path = os.environ.get("CONNECTS_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(text + "\n")
