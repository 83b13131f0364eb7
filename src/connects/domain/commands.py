"""Commands: what a caller asks the engine to do, in the imperative.

Every write to an account goes through one: the API, the dashboard, the CLI, the
demo and the background work build a command and hand it to ``ctx.handle``, which
runs its one handler (wired in :data:`connects.bootstrap.COMMAND_HANDLERS`) with a
fresh unit of work and dispatches the events it raised after commit. A command is
plain data: each field is what the caller said, checked by the handler.

A new command is a dataclass here, a handler ``def handler(cmd, uow) -> result`` in
the service module of its concept, and one line in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from connects.domain.policy import Actor

R = TypeVar("R", covariant=True)


class Command(Generic[R]):
    """Base of every command; ``R`` is what its handler answers."""

    __slots__ = ()


# -- people and accounts (R1-R4) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateUser(Command[dict[str, Any]]):
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class OpenAccount(Command[str]):
    """A freelancer or agency account owned by ``owner_id`` (R1, R2)."""

    owner_id: str
    kind: str
    name: str
    plan: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class UpdateAccount(Command[None]):
    who: Actor
    account_id: str
    plan: str | None = None
    timezone: str | None = None
    low_balance_threshold: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class InviteMember(Command[dict[str, Any]]):
    """Invite a person to an agency with a role; they join only if they accept (R49).
    The dashboard names the person by ``email`` (then ``user_id`` is ignored)."""

    who: Actor
    account_id: str
    user_id: str
    role: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class AcceptInvitation(Command[dict[str, Any]]):
    """The invited person joins the agency with the invited role (R49)."""

    user_id: str
    invitation_id: str


@dataclass(frozen=True, slots=True)
class DeclineInvitation(Command[dict[str, Any]]):
    """The invited person refuses; they never become a member through it (R49)."""

    user_id: str
    invitation_id: str


@dataclass(frozen=True, slots=True)
class ChangeRole(Command[None]):
    who: Actor
    account_id: str
    user_id: str
    role: str


@dataclass(frozen=True, slots=True)
class RemoveMember(Command[None]):
    who: Actor
    account_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SetBudget(Command[None]):
    """A member's monthly budget of Connects, or none (R4)."""

    who: Actor
    account_id: str
    user_id: str
    monthly_connects: int | None


@dataclass(frozen=True, slots=True)
class CreditEarnings(Command[int]):
    """The operator credits earnings (cents) that purchases may be paid from (R17)."""

    account_id: str
    amount_cents: int


# -- jobs and proposals (R5, R13-R16) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostJob(Command[str]):
    client_id: str
    title: str
    connects_required: int


@dataclass(frozen=True, slots=True)
class ChangeJobPrice(Command[None]):
    """The client changes a live job's price (R13)."""

    client_id: str
    job_id: str
    connects_required: int


@dataclass(frozen=True, slots=True)
class SubmitProposal(Command[dict[str, Any]]):
    """Submit under ``account_id`` for ``freelancer_id`` at the price the caller saw
    (R5, R13, R14, R22)."""

    who: Actor
    job_id: str
    account_id: str
    freelancer_id: str
    expected_connects: int
    boost: int | None = None  # R35: a bid in Connects, held on top of the price


@dataclass(frozen=True, slots=True)
class WithdrawProposal(Command[None]):
    who: Actor
    proposal_id: str


@dataclass(frozen=True, slots=True)
class RaiseBoost(Command[dict[str, Any]]):
    """Raise a proposal's bid while its job's auction is open (R35)."""

    who: Actor
    proposal_id: str
    bid: int


@dataclass(frozen=True, slots=True)
class RecordOutcome(Command[dict[str, Any]]):
    """The job's client views or declines a proposal (R38); may capture a boost (R35)."""

    client_id: str
    proposal_id: str
    kind: str  # "viewed" | "declined"


@dataclass(frozen=True, slots=True)
class SetBadge(Command[dict[str, Any]]):
    """The owner of a freelancer account switches the badge and sets its weekly maximum
    (R37)."""

    who: Actor
    account_id: str
    enabled: bool | None = None
    weekly_max: int | None = None


@dataclass(frozen=True, slots=True)
class SetBadgePrice(Command[dict[str, Any]]):
    """The operator sets the badge's weekly price; it applies from the next charge (R37)."""

    weekly: int


@dataclass(frozen=True, slots=True)
class StartInterview(Command[int]):
    """The client starts an interview: the plan's reward, once (R16)."""

    client_id: str
    proposal_id: str


@dataclass(frozen=True, slots=True)
class EndJob(Command[dict[str, Any]]):
    """``outcome``: cancelled, closed (with or without a hire), removed, expired (R15)."""

    actor: Actor
    job_id: str
    outcome: str
    hired_proposal_id: str | None = None


# -- purchases and auto top-up (R6, R17-R25) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AddBillingMethod(Command[dict[str, Any]]):
    who: Actor
    account_id: str
    token: str


@dataclass(frozen=True, slots=True)
class SetDefaultBillingMethod(Command[dict[str, Any]]):
    """Make a card the one auto top-up and ``pay_with: "default"`` charge (R44)."""

    who: Actor
    account_id: str
    billing_method_id: str


@dataclass(frozen=True, slots=True)
class RemoveBillingMethod(Command[None]):
    """Remove a card; removing the default leaves none until one is chosen (R44)."""

    who: Actor
    account_id: str
    billing_method_id: str


@dataclass(frozen=True, slots=True)
class BuyConnects(Command[dict[str, Any]]):
    """Buy paid whole by ``pay_with``: ``earnings``, a billing method id or ``default``
    (R17, R18). ``request_key`` (a client's ``Idempotency-Key``) makes it at most one
    purchase per request (R31); ``topup_id`` and ``purchase_id`` are auto top-up's."""

    who: Actor
    account_id: str
    quantity: int
    pay_with: str
    topup_id: str | None = None
    purchase_id: str | None = None
    request_key: str | None = None


@dataclass(frozen=True, slots=True)
class GrantPermissions(Command[dict[str, Any]]):
    """Grant a business manager permissions (R6, R19)."""

    who: Actor
    account_id: str
    grantee: str
    permissions: list[str]


@dataclass(frozen=True, slots=True)
class RevokeGrant(Command[None]):
    who: Actor
    account_id: str
    grant_id: str


@dataclass(frozen=True, slots=True)
class SetAutoTopUp(Command[dict[str, Any]]):
    """Change the named auto top-up settings, the rest as they are (R19-R22)."""

    who: Actor
    account_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResumeAutoTopUp(Command[dict[str, Any]]):
    """End the pause that 3 declines in a row began (R42)."""

    who: Actor
    account_id: str


# -- notifications (R27-R29) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddChannel(Command[dict[str, Any]]):
    """A channel for the account's notifications; ``events`` narrows what it gets."""

    who: Actor
    account_id: str
    kind: str
    target: str
    events: list[str] | None = None
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveChannel(Command[None]):
    who: Actor
    account_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class SendTestNotification(Command[dict[str, Any]]):
    """Send a test message to one channel now; answers whether it took it."""

    who: Actor
    account_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class SetNotificationSettings(Command[dict[str, Any]]):
    """Change the named toggles and the low-balance threshold, the rest as they are."""

    who: Actor
    account_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)
