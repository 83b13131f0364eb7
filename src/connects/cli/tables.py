"""How the ``connects`` command line shows things: tables that never cut an id, names
beside ids, numbers grouped (1,234).

On a terminal the tables fit its width, folding an id onto a second line rather than
cutting it; piped or redirected, they are as wide as their content, so every id is
whole for ``grep`` and ``awk`` (``--json`` for programs).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

# Wide enough for any row: a table is only as wide as its content (never expanded).
_UNBOUNDED = 100_000


def console() -> Console:
    """Standard output as it is now: a terminal's width, else no width limit."""
    return Console() if sys.stdout.isatty() else Console(width=_UNBOUNDED)


def table(*columns: str, ids: tuple[str, ...] = ("id",)) -> Table:
    """A table whose id columns fold instead of being cut (``acct_01m…``)."""
    made = Table()
    for name in columns:
        if name in ids:
            made.add_column(name, overflow="fold", no_wrap=False)
        else:
            made.add_column(name)
    return made


def grouped(value: int | None, *, signed: bool = False) -> str:
    """1,234 (``signed``: +1,234 / -1,234); empty for None."""
    if value is None:
        return ""
    return f"{value:+,}" if signed else f"{value:,}"


def actor_label(actor: str, people: dict[str, str]) -> str:
    """A ledger entry's actor for people: the person's name, else the actor as stored
    (``system``, ``business_manager:topup-manager``, ``operator``)."""
    kind, _, ident = actor.partition(":")
    if kind == "user" and ident in people:
        return people[ident]
    return actor


def print_json(rows: Any) -> None:
    """Rows as indented JSON on standard output (times as RFC 3339)."""

    def encode(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"cannot encode {type(value).__name__}")

    sys.stdout.write(json.dumps(rows, indent=2, default=encode) + "\n")


def print_accounts(rows: list[dict[str, Any]]) -> None:
    out = table("id", "kind", "name", "owner", "plan", "members", "available")
    for r in rows:
        out.add_row(
            r["id"],
            r["kind"],
            r["name"],
            r["owner"],
            r["plan"],
            grouped(r["members"]),
            grouped(r["available"]),
        )
    console().print(out)


def history_rows(items: list[dict[str, Any]], people: dict[str, str]) -> list[dict[str, Any]]:
    """Ledger entries with the names of their actor and member beside the ids."""
    return [
        {
            **e,
            "actor_name": actor_label(e["actor"], people),
            "member_name": people.get(e["member_id"]) if e["member_id"] else None,
        }
        for e in items
    ]


def print_history(rows: list[dict[str, Any]]) -> None:
    out = table("#", "at", "kind", "amount", "balance after", "by", "member", "note")
    for e in rows:
        out.add_row(
            str(e["seq"]),
            e["at"].strftime("%Y-%m-%d %H:%M"),
            e["kind"],
            grouped(e["amount"], signed=True),
            grouped(e["balance_after"]),
            e["actor_name"],
            e["member_name"] or "",
            e["note"] or "",
        )
    console().print(out)


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _money(value: dict[str, Any] | None) -> str:
    if value is None:
        return ""
    return f"{value['amount'] / 100:,.2f} {value['currency']}"


def print_results(answer: dict[str, Any], names: dict[str, str]) -> None:
    """Results (R39): a line per group (a member's name beside their id), then the total."""
    out = table(
        "group",
        "sent",
        "spent",
        "boosts",
        "viewed",
        "interviews",
        "hires",
        "per interview",
        "per hire",
        "cost per hire",
        ids=("group",),
    )
    lines = [*answer["groups"], {**answer["totals"], "key": "total"}]
    for r in lines:
        key = r["key"]
        label = f"{names[key]} ({key})" if key in names else key
        out.add_row(
            label,
            grouped(r["proposals"]),
            grouped(r["connects_spent"]),
            grouped(r["boost_connects_spent"]),
            grouped(r["views"]),
            grouped(r["interviews"]),
            grouped(r["hires"]),
            _ratio(r["connects_per_interview"]),
            _ratio(r["connects_per_hire"]),
            _money(r["cost_per_hire"]),
        )
    out.title = f"Results {answer['from']:%Y-%m-%d} to {answer['to']:%Y-%m-%d}"
    console().print(out)
