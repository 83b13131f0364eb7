"""The product's words: every kind and status the ledger, jobs, top-ups and the outbox
store, each written once.

The database's CHECK constraints on these columns are built from the enums here
(:func:`connects.db.schema.one_of`), the API's ``Literal`` types and the dashboard's
filters read them, and the lifecycles of a job and a proposal are the small state
machines at the bottom. A new kind of spend, status or event starts here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from connects.domain.errors import JobNotOpen, ProposalNotActive


class AccountKind(StrEnum):
    """R1: two kinds of account, each with its own balance."""

    FREELANCER = "freelancer"
    AGENCY = "agency"


class ActorKind(StrEnum):
    """Who did something, as written on every entry (R30)."""

    USER = "user"
    BUSINESS_MANAGER = "business_manager"  # R6
    SYSTEM = "system"  # the worker: cycles, expiry, auto top-up
    OPERATOR = "operator"


class EntryKind(StrEnum):
    """What a ledger entry did to the balance (R30)."""

    GRANT = "grant"  # R8: the cycle's free Connects
    PURCHASE = "purchase"  # R17, R18 (auto top-up included)
    SPEND = "spend"  # R14: a proposal's price
    REFUND = "refund"  # R15: back into the lots it came from
    REWARD = "reward"  # R16: an interview started
    EXPIRE = "expire"  # R10, R12: a lot's year ran out
    ROLLOVER_FORFEIT = "rollover_forfeit"  # R9: grant Connects above the cap
    HOLD = "hold"  # R34: Connects held (or a hold raised); moves nothing (amount 0)
    RELEASE = "release"  # R34: a hold released; moves nothing (amount 0)
    CAPTURE = "capture"  # R34, R35: a hold captured: the Connects are spent
    BADGE = "badge"  # R37: a daily instalment of the availability badge

    @classmethod
    def usage(cls) -> tuple[EntryKind, ...]:
        """The kinds a proposal's Connects move by: what "used" counts (R4, R26); a
        captured boost counts as its proposal's (R35)."""
        return (cls.SPEND, cls.REFUND, cls.CAPTURE)


class LotSource(StrEnum):
    """Where a lot came from; only grant lots meet the rollover cap (R9)."""

    GRANT = "grant"
    PURCHASE = "purchase"
    REWARD = "reward"


class JobStatus(StrEnum):
    """A job's lifecycle (R13, R15): open, then exactly one ending."""

    OPEN = "open"
    FILLED = "filled"  # closed with a hire
    CLOSED = "closed"  # closed without a hire: refunds (R15)
    CANCELLED = "cancelled"  # refunds (R15)
    REMOVED = "removed"  # by the operator: refunds (R15)
    EXPIRED = "expired"  # no refunds (R15)

    @property
    def refunds(self) -> bool:
        """Whether this ending gives every active proposal its Connects back (R15)."""
        return self in _REFUNDING_JOB_ENDS


_REFUNDING_JOB_ENDS = frozenset({JobStatus.CLOSED, JobStatus.CANCELLED, JobStatus.REMOVED})


class ProposalStatus(StrEnum):
    """A proposal's lifecycle (R14-R16)."""

    ACTIVE = "active"
    INTERVIEWING = "interviewing"  # R16
    WITHDRAWN = "withdrawn"  # no refund (R15)
    REFUNDED = "refunded"  # the job ended with refunds (R15)
    HIRED = "hired"
    DECLINED = "declined"  # by the job's client: no refund (R15, R38)

    @property
    def live(self) -> bool:
        """Still in the running: may be withdrawn, interviewed, hired or refunded."""
        return self in _LIVE_PROPOSALS


_LIVE_PROPOSALS = frozenset({ProposalStatus.ACTIVE, ProposalStatus.INTERVIEWING})


class HoldStatus(StrEnum):
    """A hold on Connects ends exactly once (R34): captured (all or part, the rest
    released) or released, by hand or at its deadline."""

    HELD = "held"
    CAPTURED = "captured"
    RELEASED = "released"

    @classmethod
    def bidding(cls) -> tuple[HoldStatus, ...]:
        """The boost holds that rank in a job's auction (R35): released ones do not."""
        return (cls.HELD, cls.CAPTURED)


class OutcomeKind(StrEnum):
    """What happened to a proposal (R38): by the job's client, or by the system."""

    VIEWED = "viewed"
    INTERVIEWED = "interviewed"
    DECLINED = "declined"
    HIRED = "hired"
    WITHDRAWN = "withdrawn"
    RETURNED = "returned"  # its Connects came back (R15)

    @property
    def captures(self) -> bool:
        """A client interaction: captures a boost in the top 4 while open (R35)."""
        return self in _CLIENT_INTERACTIONS


_CLIENT_INTERACTIONS = frozenset(
    {OutcomeKind.VIEWED, OutcomeKind.INTERVIEWED, OutcomeKind.DECLINED, OutcomeKind.HIRED}
)


class BadgeStopReason(StrEnum):
    """Why the availability badge switched itself off (R37)."""

    PRICE_ABOVE_MAXIMUM = "price_above_maximum"
    INSUFFICIENT_CONNECTS = "insufficient_connects"


class InvitationStatus(StrEnum):
    """An invitation to join an agency is answered once, by the invited person (R49)."""

    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class PurchaseStatus(StrEnum):
    """A card purchase is recorded before money moves, then completed (R17)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def counted(cls) -> tuple[PurchaseStatus, ...]:
        """What uses up the month's limit: money that moved or may still move (R48)."""
        return (cls.PENDING, cls.SUCCEEDED)


class TopUpStatus(StrEnum):
    """One auto top-up attempt (R25)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @classmethod
    def counted(cls) -> tuple[TopUpStatus, ...]:
        """What uses up the month's limit (R21)."""
        return (cls.PENDING, cls.SUCCEEDED)


class TopUpTrigger(StrEnum):
    """What decided a top-up (R20, R22)."""

    BALANCE_ZERO = "balance_zero"
    THRESHOLD = "threshold"
    JUST_IN_TIME = "just_in_time"


class TopUpState(StrEnum):
    """Whether auto top-up can buy now (R40): ``active``, or ``blocked`` for a
    :class:`BlockedReason`."""

    ACTIVE = "active"
    BLOCKED = "blocked"


class BlockedReason(StrEnum):
    """Why auto top-up cannot buy now (R40), each cleared by its own fix (R41)."""

    PAUSED = "paused"  # 3 declines in a row; an owner or admin resumes it (R42)
    NO_GRANT = "no_grant"  # the top-up manager holds no connects:purchase grant (R6)
    GRANT_PENDING = "grant_pending"  # the grant is still in its sync delay (R19)
    GRANT_REVOKED = "grant_revoked"  # the grant was revoked (R6)
    NO_PAYMENT_METHOD = "no_payment_method"  # no default card (R44)
    PAYMENT_DECLINED = "payment_declined"  # waiting to try the card again (R42)
    MONTHLY_LIMIT_REACHED = "monthly_limit_reached"  # this month's per_month is used (R21)


class EventType(StrEnum):
    """The notifications an account can receive (R27), kept in the outbox (R29)."""

    BALANCE_LOW = "balance_low"
    BALANCE_EMPTY = "balance_empty"
    TOPUP_SUCCEEDED = "topup_succeeded"
    TOPUP_FAILED = "topup_failed"
    MONTHLY_LIMIT_REACHED = "monthly_limit_reached"
    CONNECTS_REFUNDED = "connects_refunded"
    CONNECTS_PURCHASED = "connects_purchased"
    CONNECTS_EXPIRING = "connects_expiring"
    TOPUP_PAUSED = "topup_paused"  # R42: 3 declines in a row paused auto top-up
    BADGE_STOPPED = "badge_stopped"  # R37: the badge switched itself off, with why

    @property
    def switch(self) -> NotificationSwitch:
        """The account's toggle that lets this event out (R27)."""
        return _EVENT_SWITCHES[self]


class NotificationSwitch(StrEnum):
    """An account's notification toggles (R27), all on by default: the two of seed 000
    ("Low Connects Balance", "Auto Top-Up") first, then one for each other event."""

    LOW_BALANCE = "low_balance"
    TOPUPS = "topups"
    MONTHLY_LIMIT = "monthly_limit"
    REFUNDS = "refunds"
    PURCHASES = "purchases"
    EXPIRING = "expiring"


_EVENT_SWITCHES: Mapping[EventType, NotificationSwitch] = {
    EventType.BALANCE_LOW: NotificationSwitch.LOW_BALANCE,
    EventType.BALANCE_EMPTY: NotificationSwitch.LOW_BALANCE,
    EventType.TOPUP_SUCCEEDED: NotificationSwitch.TOPUPS,
    EventType.TOPUP_FAILED: NotificationSwitch.TOPUPS,
    EventType.MONTHLY_LIMIT_REACHED: NotificationSwitch.MONTHLY_LIMIT,
    EventType.CONNECTS_REFUNDED: NotificationSwitch.REFUNDS,
    EventType.CONNECTS_PURCHASED: NotificationSwitch.PURCHASES,
    EventType.CONNECTS_EXPIRING: NotificationSwitch.EXPIRING,
    EventType.TOPUP_PAUSED: NotificationSwitch.TOPUPS,
    EventType.BADGE_STOPPED: NotificationSwitch.PURCHASES,
}


class ChannelKind(StrEnum):
    """Where notifications go (R28)."""

    TELEGRAM = "telegram"
    SLACK = "slack"
    DISCORD = "discord"
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    """One notification to one channel (R29): never dropped, ``dead`` at the end."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


# -- lifecycles ---------------------------------------------------------------------------

JOB_ENDINGS: Mapping[JobStatus, str] = {
    JobStatus.CANCELLED: "the client cancelled the job",
    JobStatus.CLOSED: "the client closed the job without hiring",
    JobStatus.REMOVED: "the job was removed for breaking the rules",
    JobStatus.FILLED: "the client hired",
    JobStatus.EXPIRED: "the job expired",
}

PROPOSAL_MOVES: Mapping[ProposalStatus, frozenset[ProposalStatus]] = {
    ProposalStatus.ACTIVE: frozenset(
        {
            ProposalStatus.INTERVIEWING,
            ProposalStatus.WITHDRAWN,
            ProposalStatus.REFUNDED,
            ProposalStatus.HIRED,
            ProposalStatus.DECLINED,
        }
    ),
    ProposalStatus.INTERVIEWING: frozenset(
        {
            ProposalStatus.WITHDRAWN,
            ProposalStatus.REFUNDED,
            ProposalStatus.HIRED,
            ProposalStatus.DECLINED,
        }
    ),
    ProposalStatus.WITHDRAWN: frozenset(),
    ProposalStatus.REFUNDED: frozenset(),
    ProposalStatus.HIRED: frozenset(),
    ProposalStatus.DECLINED: frozenset(),
}


def end_job(current: str, ending: JobStatus) -> JobStatus:
    """The job's next status: only an open job ends, once (``job_not_open``)."""
    if JobStatus(current) is not JobStatus.OPEN:
        raise JobNotOpen(f"the job is already {current}", status=current)
    if ending is JobStatus.OPEN:
        raise ValueError("a job ends in a status other than open")
    return ending


def move_proposal(current: str, to: ProposalStatus) -> ProposalStatus:
    """The proposal's next status, refused with ``proposal_not_active`` when its
    lifecycle does not allow the move (a withdrawn proposal is never hired, ...)."""
    status = ProposalStatus(current)
    if to not in PROPOSAL_MOVES[status]:
        raise ProposalNotActive(f"the proposal is {status}", status=status.value)
    return to
