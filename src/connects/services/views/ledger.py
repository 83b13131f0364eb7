"""Reads of the ledger: the entries page by page (and as CSV), and the live lots with
what expires soon."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import and_, select

from connects.db.schema import accounts, entries, lots
from connects.domain.cursors import number_cursor, page_limit
from connects.domain.errors import InvalidRequest, NotFound
from connects.domain.lots import expires_soon
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import EntryKind
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.views._reads import HORIZON, NOW, AccountRead, authorized_row, params

# Members of a StrEnum hash as their values: a plain string is looked up directly.
_KINDS = frozenset(EntryKind)


def _lots_read(*window: Any) -> AccountRead:
    """The account's live lots in ``window``, soonest to expire first, one row each
    (one row of nulls if there are none), joined to the account row in one query."""
    live = and_(
        lots.c.account_id == accounts.c.id,
        lots.c.remaining > 0,
        lots.c.expires_at > NOW,
        *window,
    )
    return AccountRead(
        [
            accounts.c.id.label("account_id"),
            lots.c.id,
            lots.c.source,
            lots.c.issued_at,
            lots.c.expires_at,
            lots.c.remaining,
        ],
        source=accounts.outerjoin(lots, live),
        order_by=(lots.c.expires_at, lots.c.issued_at, lots.c.id),
    )


_LIVE_LOTS = _lots_read()
_EXPIRING_LOTS = _lots_read(lots.c.expires_at <= HORIZON)


def expiring(
    ctx: Context, who: Actor, account_id: str, *, all_lots: bool = False
) -> dict[str, Any]:
    """What expires in (now, now+30d] (R12), lot by lot; ``all_lots`` lists every live lot."""
    now = ctx.now()
    bound = params(account_id, now)
    read = _LIVE_LOTS if all_lots else _EXPIRING_LOTS
    with ctx.db.read() as conn:
        _, first = authorized_row(conn, read, who, Action.VIEW, bound, all_rows=True)
    rows = [r for r in first if r.id is not None]
    return {
        "within_30d": sum(r.remaining for r in rows if expires_soon(r.expires_at, bound["now"])),
        "lots": [
            {
                "id": r.id,
                "source": r.source,
                "issued_at": r.issued_at,
                "expires_at": r.expires_at,
                "remaining": r.remaining,
            }
            for r in rows
        ],
    }


def history(
    ctx: Context,
    who: Actor,
    account_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    kind: str | None = None,
    member_id: str | None = None,
) -> dict[str, Any]:
    """Ledger entries, newest first, paged by sequence number (R30)."""
    limit = page_limit(limit, 1000)
    if kind is not None and kind not in _KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(EntryKind)}", field="kind")
    before = number_cursor(cursor)  # the sequence number of the last entry shown
    now = ctx.now()
    with ctx.db.replica_read() as conn:  # never older than a write already answered
        authorize(conn, account_id, who, Action.VIEW, now)
        if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
            raise NotFound("no such account", account_id=account_id)  # the operator asked (R32)
        query = select(entries).where(entries.c.account_id == account_id)
        if before is not None:
            query = query.where(entries.c.seq < before)
        if kind is not None:
            query = query.where(entries.c.kind == kind)
        if member_id is not None:
            query = query.where(entries.c.member_id == member_id)
        rows = conn.execute(query.order_by(entries.c.seq.desc()).limit(limit + 1)).all()
    items = [entry_dict(r) for r in rows[:limit]]
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def entry_dict(r: Any) -> dict[str, Any]:
    """One ledger entry row as the API, the dashboard and the CSV show it."""
    actor = r.actor_kind if r.actor_id is None else f"{r.actor_kind}:{r.actor_id}"
    return {
        "id": r.id,
        "seq": r.seq,
        "at": r.at,
        "kind": r.kind,
        "amount": r.amount,
        "balance_after": r.balance_after,
        "actor": actor,
        "member_id": r.member_id,
        "proposal_id": r.proposal_id,
        "purchase_id": r.purchase_id,
        "topup_id": r.topup_id,
        "hold_id": r.hold_id,
        "note": r.note,
    }


CSV_FIELDS = (
    "id",
    "at",
    "kind",
    "amount",
    "balance_after",
    "actor",
    "member_id",
    "proposal_id",
    "purchase_id",
    "topup_id",
    "note",
)


# A spreadsheet reads a cell starting with one of these as a formula (OWASP's CSV
# injection advice): such a text cell gets a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell: text that a spreadsheet would run is defused; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def entries_csv(items: list[dict[str, Any]]) -> str:
    """Ledger entries as CSV (the CLI's ``history --csv``, the API's ``?format=csv``, the
    dashboard's download). Text cells (a note carries a job's title) never start a formula;
    ``amount`` and ``balance_after`` are integers and stay numbers, negative or not.
    Lines end in CRLF (RFC 4180), so a CR or LF inside a text cell is always quoted and
    never starts a row of its own."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    for e in items:
        writer.writerow({k: _cell(v) for k, v in {**e, "at": e["at"].isoformat()}.items()})
    return out.getvalue()
