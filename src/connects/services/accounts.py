"""People, accounts, memberships, budgets and plans (R1-R4, R7, R8)."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from connects.db.schema import accounts, memberships, users
from connects.domain.alerts import THRESHOLD_FIELD, wanted_levels
from connects.domain.calendar import rezoned_cycle, zone
from connects.domain.commands import (
    ChangeRole,
    CreateUser,
    CreditEarnings,
    OpenAccount,
    RemoveMember,
    SetBudget,
    UpdateAccount,
)
from connects.domain.emails import email_address
from connects.domain.errors import (
    AgencyOnly,
    AlreadyHasFreelancerAccount,
    AlreadyOwnsAgency,
    InvalidRequest,
    NotFound,
    OwnerIsPermanent,
)
from connects.domain.ids import new_id
from connects.domain.plans import ACCOUNT_KINDS
from connects.domain.policy import ASSIGNABLE_ROLES, Action, Role
from connects.services import balance_alerts, proposal_figures
from connects.services.book import AccountBook
from connects.services.context import Context
from connects.services.cycles import catch_up
from connects.services.uow import UnitOfWork

MAX_NAME = 200


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256: a leaked table gives no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _name(value: str, field: str = "name") -> str:
    """A person's or an account's name, as every name field takes it: 1 to
    :data:`MAX_NAME` characters, none of them a control character (an ANSI escape, a
    newline), which would rewrite a terminal or a log line it is shown in."""
    value = (value or "").strip()
    if not value or len(value) > MAX_NAME:
        raise InvalidRequest(f"{field} must be 1 to {MAX_NAME} characters", field=field)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidRequest(f"{field} must not contain control characters", field=field)
    return value


def create_user(cmd: CreateUser, uow: UnitOfWork) -> dict[str, Any]:
    """A new person with a bearer token (returned here only).

    The answer is the same whether or not the address is already registered (R49):
    a second person giving it gets their own account, and sign-in links keep going to
    the address's first holder (:func:`person_by_email`).
    """
    name = _name(cmd.name)
    email = email_address(cmd.email)
    token = "cx_" + secrets.token_urlsafe(32)
    row = {
        "id": new_id("usr"),
        "name": name,
        "email": email,
        "token_hash": hash_token(token),
        "created_at": uow.ctx.now(),
    }
    with uow.begin() as tx:
        tx.conn.execute(insert(users), row)
    return {"id": row["id"], "name": name, "email": email, "token": token}


def person_by_email(conn: Connection, email: str) -> str | None:
    """The id of the first person who registered ``email`` (case-insensitive), or None.

    Addresses are not unique (sign-up does not reveal them, R49): the first holder is
    the one sign-in links go to.
    """
    found = conn.execute(
        select(users.c.id)
        .where(users.c.email == email.strip().lower())
        .order_by(users.c.created_at, users.c.id)
        .limit(1)
    ).scalar_one_or_none()
    return None if found is None else str(found)


def rotate_token(ctx: Context, user_id: str) -> str:
    """A new token for a person; the old one stops working."""
    token = "cx_" + secrets.token_urlsafe(32)
    with ctx.db.begin() as conn:
        done = conn.execute(
            update(users).where(users.c.id == user_id).values(token_hash=hash_token(token))
        ).rowcount
    if not done:
        raise NotFound("no such person", user_id=user_id)
    return token


# Every request looks its caller up: the statement is built once, and reads only what
# the caller is made of (less than half the time of reading the whole row).
_BY_TOKEN = select(users.c.id, users.c.name).where(users.c.token_hash == bindparam("token_hash"))


def user_by_token(conn: Connection, token: str) -> Any | None:
    """The person holding ``token`` (their ``id`` and ``name``), or None."""
    return conn.execute(_BY_TOKEN, {"token_hash": hash_token(token)}).one_or_none()


def create_account(cmd: OpenAccount, uow: UnitOfWork) -> str:
    """Open a freelancer or agency account owned by ``owner_id`` (R1, R2).

    The first billing cycle starts now: the plan's Connects are granted at once and the
    cycle day is today's date (R8).
    """
    ctx, owner_id, kind, timezone = uow.ctx, cmd.owner_id, cmd.kind, cmd.timezone
    if kind not in ACCOUNT_KINDS:
        raise InvalidRequest("kind must be 'freelancer' or 'agency'", field="kind")
    name = _name(cmd.name)
    plan_id = cmd.plan or ctx.catalog.default_for(kind)
    ctx.catalog.for_kind(plan_id, kind)
    tz = zone(timezone)
    now = ctx.now()
    account_id = new_id("acct")
    refusal = (
        AlreadyOwnsAgency("a person can own only one agency")
        if kind == "agency"
        else AlreadyHasFreelancerAccount("a person has only one freelancer account")
    )
    try:
        with uow.begin(now) as tx:
            conn = tx.conn
            if conn.execute(select(users.c.id).where(users.c.id == owner_id)).first() is None:
                raise NotFound("no such person", user_id=owner_id)
            taken = conn.execute(
                select(accounts.c.id)
                .where(accounts.c.owner_id == owner_id, accounts.c.kind == kind)
                .execution_options(all_accounts=True)  # a person's accounts: every shard
            ).first()
            if taken:
                raise refusal
            conn.execute(
                insert(accounts),
                {
                    "id": account_id,
                    "kind": kind,
                    "name": name,
                    "owner_id": owner_id,
                    "plan": plan_id,
                    "timezone": timezone,
                    "anchor_day": now.astimezone(tz).day,
                    "next_cycle_at": now,
                    "balance": 0,
                    "earnings_cents": 0,
                    "low_balance_threshold": 0,
                    "seq": 0,
                    "created_at": now,
                },
            )
            conn.execute(
                insert(memberships),
                {
                    "account_id": account_id,
                    "user_id": owner_id,
                    "role": Role.OWNER.value,
                    "monthly_budget": None,
                    "created_at": now,
                },
            )
            catch_up(ctx, tx.book(account_id))
    except IntegrityError:  # a concurrent twin passed the check first
        raise refusal from None
    return account_id


def update_account(cmd: UpdateAccount, uow: UnitOfWork) -> None:
    """Change the plan, time zone, low-balance threshold or name (owner/admin, R3).

    A new plan's features (unit price, submit on behalf) apply at once; its grant and
    rollover cap apply from the next cycle day **(decision)**.
    """
    ctx, account_id, plan, timezone = uow.ctx, cmd.account_id, cmd.plan, cmd.timezone
    low_balance_threshold, name = cmd.low_balance_threshold, cmd.name
    values: dict[str, Any] = {}
    if timezone is not None:
        zone(timezone)
        values["timezone"] = timezone
    levels = None
    if low_balance_threshold is not None:  # the older single level (R27, R45)
        levels = wanted_levels({THRESHOLD_FIELD: low_balance_threshold})
    if name is not None:
        values["name"] = _name(name)
    with uow.begin() as tx:
        conn, book = tx.conn, tx.book(account_id)
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        if plan is not None:
            ctx.catalog.for_kind(plan, book.kind)
            values["plan"] = plan
        if timezone is not None:  # the pending cycle day, at midnight in the new zone (R8)
            book.next_cycle_at = rezoned_cycle(
                book.anchor_day, book.next_cycle_at, zone(book.timezone), zone(timezone)
            )
            if timezone != book.timezone:  # results count months in the new zone (R39)
                proposal_figures.rezone(conn, account_id, timezone)
        if values:
            conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))
        if levels is not None:
            balance_alerts.set_levels(conn, account_id, book.balance, levels, tx.now)


def require_agency(book: AccountBook) -> None:
    """Refuse unless the account is an agency: only agencies have members and budgets."""
    if book.kind != "agency":
        raise AgencyOnly("only agency accounts have members and budgets")


def assignable_role(value: str) -> Role:
    """The role a member may be given (any but owner), or ``invalid_request``."""
    if value not in {r.value for r in ASSIGNABLE_ROLES}:
        raise InvalidRequest(
            "role must be admin, manager or member (an agency has one owner)", field="role"
        )
    return Role(value)


def _member_row(conn: Connection, account_id: str, user_id: str) -> Any:
    row = conn.execute(
        select(memberships).where(
            memberships.c.account_id == account_id, memberships.c.user_id == user_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound("no such member", user_id=user_id)
    return row


def change_role(cmd: ChangeRole, uow: UnitOfWork) -> None:
    """Change a member's role; the owner's role never changes (R3)."""
    account_id, user_id, new_role = cmd.account_id, cmd.user_id, assignable_role(cmd.role)
    with uow.begin() as tx:
        conn, book = tx.conn, tx.book(account_id)
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        require_agency(book)
        if _member_row(conn, account_id, user_id).role == Role.OWNER:
            raise OwnerIsPermanent("the owner's role cannot change")
        conn.execute(
            update(memberships)
            .where(memberships.c.account_id == account_id, memberships.c.user_id == user_id)
            .values(role=new_role.value)
        )


def remove_member(cmd: RemoveMember, uow: UnitOfWork) -> None:
    """Remove a member (not the owner). Their past entries stay in the ledger."""
    account_id, user_id = cmd.account_id, cmd.user_id
    with uow.begin() as tx:
        conn, book = tx.conn, tx.book(account_id)
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        require_agency(book)
        if _member_row(conn, account_id, user_id).role == Role.OWNER:
            raise OwnerIsPermanent("the owner cannot be removed")
        conn.execute(
            delete(memberships).where(
                memberships.c.account_id == account_id, memberships.c.user_id == user_id
            )
        )


def set_budget(cmd: SetBudget, uow: UnitOfWork) -> None:
    """Set or clear a member's monthly Connects budget (R4, beyond the seeds)."""
    account_id, user_id, monthly_connects = cmd.account_id, cmd.user_id, cmd.monthly_connects
    if monthly_connects is not None and (
        isinstance(monthly_connects, bool)
        or not isinstance(monthly_connects, int)
        or monthly_connects < 0
    ):
        raise InvalidRequest(
            "monthly_connects must be a whole number >= 0 or null", field="monthly_connects"
        )
    with uow.begin() as tx:
        conn, book = tx.conn, tx.book(account_id)
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        require_agency(book)
        _member_row(conn, account_id, user_id)
        conn.execute(
            update(memberships)
            .where(memberships.c.account_id == account_id, memberships.c.user_id == user_id)
            .values(monthly_budget=monthly_connects)
        )


def credit_earnings(cmd: CreditEarnings, uow: UnitOfWork) -> int:
    """The operator credits earnings (money the account earned on contracts)."""
    amount_cents = cmd.amount_cents
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise InvalidRequest("amount must be a whole number of cents > 0", field="amount")
    with uow.begin() as tx:
        book = tx.book(cmd.account_id)
        book.earnings_cents += amount_cents
    return book.earnings_cents
