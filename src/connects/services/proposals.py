"""Submitting a proposal, and withdrawing it (R4, R5, R13, R14, R22).

A proposal pays the job's price from the pool of the account it is submitted under.
Submissions to one account that arrive together are committed together (group
commit, :mod:`connects.services.batching`); each gets the answer it would have had
alone. Lock order as in :mod:`connects.services.jobs`: the job first, then the account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db.request import Answer, KeySlot, KeyTaken, store_answers
from connects.db.schema import jobs, memberships, proposals
from connects.db.sql import Prepared
from connects.domain.commands import SubmitProposal, WithdrawProposal
from connects.domain.errors import (
    ConnectsError,
    Forbidden,
    InsufficientConnects,
    NotFound,
)
from connects.domain.events import Event
from connects.domain.policy import Action, Actor, allows
from connects.domain.vocabulary import EntryKind, OutcomeKind, ProposalStatus
from connects.services import boosts, proposal_figures, topup_runner
from connects.services.context import Context
from connects.services.holds import Placed
from connects.services.jobs import JOB_BY_LOCK, check_price, load_job, load_proposal, set_proposal
from connects.services.proposal_asks import (
    already_applied,
    applied_before,
    check,
    proposal_row,
)
from connects.services.uow import UnitOfWork
from connects.services.views.holds import new_boost

_PEOPLE = select(memberships.c.user_id, memberships.c.role, memberships.c.monthly_budget).where(
    memberships.c.account_id == bindparam("account_id"),
    memberships.c.user_id.in_(bindparam("users", expanding=True)),
)


def submit_proposal(cmd: SubmitProposal, uow: UnitOfWork) -> dict[str, Any]:
    """Submit a proposal, paying the job's price from the account's pool (R5, R13, R14).

    Refusals, each changing nothing: ``price_changed`` (with the live price),
    ``insufficient_connects``, ``member_budget_exceeded``, ``already_applied``,
    ``job_not_open``, ``not_a_member``, ``cannot_submit_on_behalf``. Short of
    Connects with just-in-time auto top-up on, the top-up runs first and the proposal
    is tried once more (R22). Group commit: see the module's docstring (answers in the
    order the submissions arrived).
    """
    ctx = uow.ctx
    try:
        return _submit_one(ctx, cmd)
    except InsufficientConnects as exc:
        need = int(exc.details.get("required", 0))
        covered = topup_runner.just_in_time(
            uow, cmd.account_id, need=need, attempt=f"{cmd.job_id}:{cmd.freelancer_id}"
        )
        if covered is None:
            raise
    return _submit_one(ctx, cmd)


def _submit_one(ctx: Context, ask: SubmitProposal) -> dict[str, Any]:
    item = (ask, ctx.db.slot())  # a keyed request's answer is stored by its batch
    if not ctx.group_commit:
        outcomes, followup = _batch(ctx, ask.account_id, [item])
        if followup is not None:
            followup()
        if isinstance(outcomes[0], BaseException):
            raise outcomes[0]
        return dict(outcomes[0])
    result = ctx.batches.submit(
        ask.account_id, item, lambda account_id, items: _batch(ctx, str(account_id), items)
    )
    return dict(result)


def _batch(
    ctx: Context, account_id: str, items: list[tuple[SubmitProposal, KeySlot | None]]
) -> tuple[list[dict[str, Any] | BaseException], Callable[[], None] | None]:
    """:func:`submit_many` as the group commit runs it: the answers, and the events the
    batch committed, dispatched once the next batch has been handed on. The batch is
    its own transaction, outside the keyed request of whichever ask leads it; it
    stores each keyed ask's answer itself (R31)."""
    with ctx.db.alone():
        outcomes, events = submit_many(
            ctx, account_id, [ask for ask, _ in items], [slot for _, slot in items]
        )
    if not events or ctx.bus is None:
        return outcomes, None
    bus = ctx.bus
    return outcomes, lambda: bus.publish(ctx, events)


class _Late(Exception):
    """Roll the pass back: asks refused once their proposal rows were written (to run
    again without), or every ask refused (``answers``: nothing to write)."""

    def __init__(
        self,
        refused: dict[int, BaseException],
        answers: dict[int, dict[str, Any] | BaseException] | None = None,
    ) -> None:
        super().__init__(f"{len(refused)} asks refused late")
        self.refused = refused
        self.answers = answers or {}


def submit_many(
    ctx: Context,
    account_id: str,
    asks: list[SubmitProposal],
    slots: list[KeySlot | None] | None = None,
) -> tuple[list[dict[str, Any] | BaseException], list[Event]]:
    """Submit ``asks`` (all to ``account_id``) in one transaction.

    Each ask gets the answer it would have had if the asks had run one by one in this
    order: a result, or the refusal (an exception instance) to raise in its caller.
    Refusals that are only known once the proposal rows are written (a proposal that
    is already there, the pool running dry) roll the transaction back, and the batch
    runs again without those asks. A batch where every ask is refused writes nothing.
    Also answers the events it committed (the auto top-ups it decided), for the
    message bus.

    ``slots`` (by position) are the keyed requests among the asks: an accepted one's
    answer is stored in the batch's transaction, so the proposal and its answer commit
    together; one whose key another request answered first gets :class:`KeyTaken`.
    A refused ask's answer is stored by its own request.
    """
    keys = slots or [None] * len(asks)
    outcomes: list[dict[str, Any] | BaseException | None] = [None] * len(asks)
    for i, ask in enumerate(asks):  # refusals that need no database
        try:
            check_price(ask.expected_connects, "expected_connects")
            if ask.boost is not None:
                boosts.check_bid(ask.boost, ctx.boost_max_bid)
            if ask.who.kind != "user" or ask.who.id is None:
                raise Forbidden("proposals are submitted by people")
        except ConnectsError as refusal:
            outcomes[i] = refusal
    while True:
        live = [i for i, o in enumerate(outcomes) if o is None]
        if not live:
            return [o for o in outcomes if o is not None], []
        uow = UnitOfWork(ctx)
        try:
            _pass(uow, account_id, [(i, asks[i], keys[i]) for i in live], outcomes)
        except _Late as late:
            for i, answer in {**late.answers, **late.refused}.items():
                outcomes[i] = answer
            continue
        return [o for o in outcomes if o is not None], uow.collect()


_JOBS_FOR_SHARE = (
    select(jobs)
    .where(jobs.c.id.in_(bindparam("job_ids", expanding=True)))
    .order_by(jobs.c.id)
    .with_for_update(read=True)
)
# One proposal: driver SQL (the hot path, bench/ledger.py); a batch: SQLAlchemy's
# multi-row VALUES, as drivers give no rows back from an executemany.
_INSERT_PROPOSALS = {
    d: (Prepared(stmt), stmt)
    for d, maker in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
    for stmt in [maker(proposals).on_conflict_do_nothing().returning(proposals.c.id)]
}


def _pass(
    uow: UnitOfWork,
    account_id: str,
    keyed_asks: list[tuple[int, SubmitProposal, KeySlot | None]],
    outcomes: list[dict[str, Any] | BaseException | None],
) -> None:
    """One try at the batch, committed: its answers go into ``outcomes`` by position."""
    answers: dict[int, dict[str, Any] | BaseException] = {}
    asks = [(i, ask) for i, ask, _ in keyed_asks]
    slots = {i: slot for i, _, slot in keyed_asks if slot is not None and slot.render}
    stored: list[tuple[KeySlot, Answer]] = []
    with uow.begin() as tx:
        conn, now = tx.conn, tx.now
        # Lock order, as everywhere: jobs (in id order) before the account.
        job_ids = sorted({a.job_id for _, a in asks})
        if len(job_ids) == 1:
            found = conn.execute(JOB_BY_LOCK["share"], {"job_id": job_ids[0]})
        else:
            found = conn.execute(_JOBS_FOR_SHARE, {"job_ids": job_ids})
        by_job = {r.id: r for r in found}
        try:
            book = tx.book(account_id, buffered=True)
        except NotFound as refusal:
            for i, _ in asks:
                outcomes[i] = refusal
            return
        users = sorted({u for _, a in asks for u in (str(a.who.id), a.freelancer_id)})
        people = {
            r.user_id: r for r in conn.execute(_PEOPLE, {"account_id": account_id, "users": users})
        }
        plan = uow.ctx.catalog.get(book.plan_id)
        spent: dict[str, int] = {}  # this month's spend of members with a budget
        rows: list[dict[str, Any]] = []
        accepted: list[tuple[int, SubmitProposal, Any, dict[str, Any]]] = []
        repeats: list[int] = []  # asks for a job and freelancer an earlier ask here has
        seen: set[tuple[str, str]] = set()
        for i, ask in asks:
            try:
                job = check(conn, book, plan, ask, by_job, people, spent)
            except ConnectsError as refusal:
                answers[i] = refusal
                continue
            if (ask.job_id, ask.freelancer_id) in seen:
                # Already applied if the first one goes through; if it is refused, this
                # pass rolls back and the next one judges this ask afresh.
                repeats.append(i)
                continue
            seen.add((ask.job_id, ask.freelancer_id))
            if ask.freelancer_id in spent:
                spent[ask.freelancer_id] += job.connects_required + (ask.boost or 0)
            row = proposal_row(ask, job.connects_required, now, book.timezone)
            rows.append(row)
            accepted.append((i, ask, job, row))
        if not accepted:
            raise _Late({}, answers)  # every ask refused: roll back, nothing is written
        placed: dict[int, Placed] = {}  # ask -> its boost's hold (R35)
        late: dict[int, BaseException] = {}
        book.sweep_expired()
        for i, ask, job, row in accepted:  # spent first: the rows go in with the figures
            price = row["connects_spent"]
            if ask.boost and book.available() < price + ask.boost:
                # R35: price and bid must both be available (a top-up may cover them)
                have = max(book.available(), 0)
                late[i] = InsufficientConnects(
                    f"this needs {price + ask.boost} Connects and {have} are available",
                    required=price + ask.boost,
                    available=have,
                )
                continue
            if price:
                try:
                    book.spend(
                        price,
                        kind=EntryKind.SPEND,
                        actor=Actor("user", ask.who.id),
                        member_id=ask.freelancer_id,
                        proposal_id=row["id"],
                        note=job.title[:120],
                        entry_id=row["entry_id"],
                    )
                except InsufficientConnects as refusal:
                    late[i] = refusal
                    continue
                # R39: the row goes in with what the spend took, taken before any flush
                took = book.take_figures(row["id"])
                row.update(zip(proposal_figures.SUMMED, took, strict=True))
            answers[i] = {**row, "balance": book.balance, "boost": None}
            if ask.boost:
                actor = Actor("user", ask.who.id)
                placed[i] = boosts.place_bid(book, job, row, ask.boost, actor)
        if late:  # a refused ask that applied already is told so first, as alone
            pairs = {i: (ask.job_id, ask.freelancer_id) for i, ask, _, _ in accepted if i in late}
            before = applied_before(conn, list(pairs.values()))
            raise _Late({**late, **{i: already_applied() for i, p in pairs.items() if p in before}})
        one, many = _INSERT_PROPOSALS[conn.dialect.name]
        found = one.execute(conn, rows[0]) if len(rows) == 1 else conn.execute(many, rows)
        inserted = set(found.scalars())
        asks_by = {i: ask for i, ask, _, _ in accepted}
        late = {i: already_applied() for i, _, _, row in accepted if row["id"] not in inserted}
        if late:
            raise _Late(late)
        proposal_figures.sent(conn, account_id, rows)
        for i, hold in placed.items():  # with its rank in the auction (R35)
            boost = new_boost(hold, asks_by[i].boost or 0)
            answers[i] = {**dict(answers[i]), "boost": boost}  # type: ignore[arg-type]
        by_slot = {id(slots[i]): i for i, *_ in accepted if i in slots}
        stored = [(slots[i], _render(slots[i], answers[i])) for i, *_ in accepted if i in slots]
        taken = store_answers(conn, stored)
        if taken:  # answered by another request with the key: run again without these
            raise _Late({by_slot[id(s)]: KeyTaken(s) for s in taken})
        for i in repeats:
            answers[i] = already_applied()
    for slot, committed in stored:  # committed with the proposals
        slot.answer = committed
    for i, answer in answers.items():
        outcomes[i] = answer


def _render(slot: KeySlot, answer: dict[str, Any] | BaseException) -> Answer:
    assert slot.render is not None and not isinstance(answer, BaseException)
    return slot.render(answer)


def withdraw(cmd: WithdrawProposal, uow: UnitOfWork) -> None:
    """The submitter (or the owner/an admin) withdraws a proposal: no refund (R15)."""
    with uow.begin() as tx:
        prop = load_proposal(tx.conn, cmd.proposal_id)
        load_job(tx.conn, prop.job_id, lock="share")  # the job first, as its ending does
        actor = tx.authorize(prop.account_id, cmd.who, Action.VIEW)
        prop = load_proposal(tx.conn, prop.id, prop.account_id)  # as it is under the locks
        if actor.id not in (prop.submitted_by, prop.freelancer_id) and not allows(
            actor.role, Action.MANAGE
        ):
            raise Forbidden("only the submitter, the freelancer, the owner or an admin withdraws")
        set_proposal(tx, prop, ProposalStatus.WITHDRAWN)
        boosts.record(tx, prop, OutcomeKind.WITHDRAWN, actor.id)
        boosts.release_on_withdraw(tx, prop, actor)
