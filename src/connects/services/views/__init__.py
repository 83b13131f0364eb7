"""The read side: plain queries for the API, the dashboard and the CLI.

Reads never take locks. Each concept has its module (the account and its overview,
the ledger, the people, the marketplace); every read is importable from here.
"""

from __future__ import annotations

from connects.services.views.accounts import account, all_accounts, available, held, me, overview
from connects.services.views.holds import (
    account_proposals,
    auction,
    hold_dict,
    holds_of,
    proposal_detail,
    proposal_seen_by,
)
from connects.services.views.jobs import job, proposal
from connects.services.views.ledger import CSV_FIELDS, entries_csv, entry_dict, expiring, history
from connects.services.views.people import (
    billing_methods,
    invitations_of,
    member,
    members,
    names,
    open_invitations,
    person_id,
)
from connects.services.views.quotes import purchase_quote

__all__ = [
    "CSV_FIELDS",
    "account",
    "account_proposals",
    "all_accounts",
    "auction",
    "available",
    "billing_methods",
    "entries_csv",
    "entry_dict",
    "expiring",
    "held",
    "history",
    "hold_dict",
    "holds_of",
    "invitations_of",
    "job",
    "me",
    "member",
    "members",
    "names",
    "open_invitations",
    "overview",
    "person_id",
    "proposal",
    "proposal_detail",
    "proposal_seen_by",
    "purchase_quote",
]
