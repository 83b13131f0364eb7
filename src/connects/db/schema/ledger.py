"""The ledger: people, accounts and their members, lots, entries and the allocations
between them, and the outbox of events.

Invariants are held by the database too (R30): balances, earnings and lots can never go
below zero; one ledger entry per sequence number per account (a lost update would
collide); one entry per dedupe key (a cycle grant or a refund applied twice would
collide); every kind, source and actor is a word of the vocabulary.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from connects.db.schema.base import ID, metadata, one_of
from connects.db.types import UTCDateTime
from connects.domain.policy import Role
from connects.domain.vocabulary import (
    AccountKind,
    ActorKind,
    EntryKind,
    EventType,
    InvitationStatus,
    LotSource,
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    # Not unique: a sign-up never tells whether an address is registered (R49), so a
    # second person may give the same address; sign-in links go to its first holder.
    Column("email", String(320), nullable=False),
    Column("token_hash", String(128), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_users_email", users.c.email, users.c.created_at)

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("owner_id", ID, ForeignKey("users.id"), nullable=False),
    Column("plan", String(64), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("anchor_day", Integer, nullable=False),
    Column("next_cycle_at", UTCDateTime, nullable=False),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("earnings_cents", BigInteger, nullable=False, server_default="0"),
    Column("low_balance_threshold", Integer, nullable=False, server_default="0"),
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    # R34: Connects held by open holds (their sum, kept by the book; verify checks it).
    Column("held", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("balance >= 0", name="balance_nonnegative"),
    CheckConstraint("earnings_cents >= 0", name="earnings_nonnegative"),
    one_of("kind", AccountKind, "kind_known"),
    CheckConstraint("anchor_day BETWEEN 1 AND 31", name="anchor_day_range"),
    # R2: at most one freelancer account and one owned agency per person.
    UniqueConstraint("owner_id", "kind"),
)
Index("ix_accounts_next_cycle_at", accounts.c.next_cycle_at)

memberships = Table(
    "memberships",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("monthly_budget", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    one_of("role", Role, "role_known"),
    CheckConstraint("monthly_budget IS NULL OR monthly_budget >= 0", name="budget_nonnegative"),
)
Index("ix_memberships_user_id", memberships.c.user_id)

# R49: joining an agency takes the person's consent; a membership row is written only
# when they accept.
invitations = Table(
    "invitations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("invited_by", ID, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime),
    one_of("role", Role, "role_known"),
    one_of("status", InvitationStatus, "status_known"),
)
# At most one open invitation per person and agency.
Index(
    "uq_invitations_open",
    invitations.c.account_id,
    invitations.c.user_id,
    unique=True,
    sqlite_where=invitations.c.status == InvitationStatus.INVITED.value,
    postgresql_where=invitations.c.status == InvitationStatus.INVITED.value,
)
Index("ix_invitations_user_id", invitations.c.user_id, invitations.c.created_at)

lots = Table(
    "lots",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("remaining", Integer, nullable=False),
    # R39: what the lot cost in all (a purchase: what was paid; else 0), and the cents
    # of it its remaining Connects still carry (domain.lots.cost_share).
    Column("cost_cents", BigInteger, nullable=False, server_default="0"),
    Column("cost_left_cents", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    CheckConstraint(
        "cost_left_cents >= 0 AND cost_left_cents <= cost_cents", name="cost_left_in_range"
    ),
    CheckConstraint("remaining > 0 OR cost_left_cents = 0", name="cost_leaves_with_connects"),
    CheckConstraint("amount > 0", name="amount_positive"),
    one_of("source", LotSource, "source_known"),
)
# Open lots of an account, by expiry: the spend path and the expiry sweep read these.
Index(
    "ix_lots_open",
    lots.c.account_id,
    lots.c.expires_at,
    sqlite_where=lots.c.remaining > 0,
    postgresql_where=lots.c.remaining > 0,
)
Index(
    "ix_lots_open_expiry",
    lots.c.expires_at,
    sqlite_where=lots.c.remaining > 0,
    postgresql_where=lots.c.remaining > 0,
)

entries = Table(
    "entries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("actor_kind", String(24), nullable=False),
    Column("actor_id", String(64)),
    Column("member_id", ID),
    Column("proposal_id", ID),
    Column("purchase_id", ID),
    Column("topup_id", ID),
    Column("note", Text),
    Column("dedupe_key", String(120)),
    Column("hold_id", ID),  # R34: the hold placed, raised, captured or released
    CheckConstraint("balance_after >= 0", name="balance_after_nonnegative"),
    one_of("kind", EntryKind, "kind_known"),
    one_of("actor_kind", ActorKind, "actor_kind_known"),
    UniqueConstraint("account_id", "seq"),
)
# One entry per dedupe key; entries without one (spends, expiry) stay out of the index.
Index(
    "uq_entries_account_id_dedupe_key",
    entries.c.account_id,
    entries.c.dedupe_key,
    unique=True,
    sqlite_where=entries.c.dedupe_key.is_not(None),
    postgresql_where=entries.c.dedupe_key.is_not(None),
)
Index("ix_entries_account_at", entries.c.account_id, entries.c.at)
# Entries made by a member (usage by member); system entries have no member_id.
Index(
    "ix_entries_account_member_at",
    entries.c.account_id,
    entries.c.member_id,
    entries.c.at,
    sqlite_where=entries.c.member_id.is_not(None),
    postgresql_where=entries.c.member_id.is_not(None),
)
# An account's refunds: every rollover asks for them (R9, R15).
Index(
    "ix_entries_account_refunds",
    entries.c.account_id,
    sqlite_where=entries.c.kind == EntryKind.REFUND.value,
    postgresql_where=entries.c.kind == EntryKind.REFUND.value,
)

allocations = Table(
    "allocations",
    metadata,
    Column("account_id", ID, nullable=False),
    # No foreign keys: keyed by entry or lot id alone, they could not hold across
    # shards of a database split by account. ``connects verify`` checks that every
    # allocation names an entry and a lot of its own account.
    Column("entry_id", ID, primary_key=True),
    Column("lot_id", ID, primary_key=True),
    Column("amount", Integer, nullable=False),
    # R39: the cents of cost these Connects carried out of (or back into) the lot.
    Column("cost_cents", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("cost_cents >= 0", name="cost_nonnegative"),
)

# The outbox: events written in the same transaction as the change that caused them.
events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("dedupe_key", String(120)),
    # Set once the event became deliveries for the account's channels (R29).
    Column("fanned_out_at", UTCDateTime),
    UniqueConstraint("account_id", "dedupe_key"),
    # Only the events the outbox keeps: a channel test is sent, never stored.
    one_of("kind", EventType, "kind_known"),
)
Index("ix_events_account_created", events.c.account_id, events.c.created_at)
Index(
    "ix_events_unfanned",
    events.c.created_at,
    sqlite_where=events.c.fanned_out_at.is_(None),
    postgresql_where=events.c.fanned_out_at.is_(None),
)
