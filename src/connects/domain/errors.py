"""Every refusal the engine can give, each with a stable ``code``.

The API maps ``code`` to an HTTP status in one place (``connects.api.errors``); the CLI
prints ``code: message``. Codes are part of the contract: never rename one.

=========================  ======  =========================================================
code                       status  meaning
=========================  ======  =========================================================
invalid_request            422     the input is malformed (``details`` names the fields)
not_found                  404     no such object, or the caller may not see it
forbidden                  403     the caller may see it but not do this
insufficient_connects      409     the pool has fewer Connects than the proposal needs
price_changed              409     the job's live price differs from the one sent
member_budget_exceeded     409     the member's monthly budget would be passed (R4)
insufficient_earnings      409     the earnings balance cannot pay the whole purchase
payment_declined           402     the card was declined; nothing was credited
already_owns_agency        409     a person owns at most one agency (R2)
already_has_freelancer_account 409 a person has at most one freelancer account (R2)
already_member             409     the person is already a member of this account
already_invited            409     the person already has an open invitation to this agency (R49)
invitation_closed          409     the invitation was already accepted or declined (R49)
already_applied            409     this freelancer already has a proposal on the job
job_not_open               409     the job no longer takes proposals or changes
proposal_not_active        409     the proposal was withdrawn, declined or refunded
hold_ended                 409     the hold was already captured or released (R34)
auction_closed             409     the job's boost auction is closed (R35)
plan_not_allowed           409     the plan does not fit the account kind, or is unknown
not_a_member               409     the freelancer named is not a member of the agency
cannot_submit_on_behalf    403     the plan or role does not allow submitting for others
owner_is_permanent         409     the owner cannot be removed or demoted
no_billing_method          409     the account has no such (or no default) billing method
bundle_not_allowed         409     the plan sells Connects only in listed bundle sizes
plan_cannot_purchase       409     the account's plan does not sell extra Connects
agency_only                409     members and budgets exist only on agency accounts
freelancer_only            409     the availability badge exists only on freelancer accounts (R37)
per_topup_exceeded         409     the business manager's purchase is above ``per_topup`` (R48)
monthly_limit_reached      409     the business manager's purchase would pass ``per_month`` (R48)
email_not_configured       409     e-mail channels need the operator's SMTP server (R47)
rate_limited               429     too many sign-in or sign-up attempts; ``Retry-After`` says when
=========================  ======  =========================================================
"""

from __future__ import annotations

from typing import Any


class ConnectsError(Exception):
    """Base of every refusal. A refused operation changes nothing."""

    code = "connects_error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidRequest(ConnectsError):
    code, status = "invalid_request", 422


class NotFound(ConnectsError):
    code, status = "not_found", 404


class Forbidden(ConnectsError):
    code, status = "forbidden", 403


class Conflict(ConnectsError):
    status = 409


class InsufficientConnects(Conflict):
    code = "insufficient_connects"


class PriceChanged(Conflict):
    code = "price_changed"


class MemberBudgetExceeded(Conflict):
    code = "member_budget_exceeded"


class InsufficientEarnings(Conflict):
    code = "insufficient_earnings"


class PaymentDeclined(ConnectsError):
    code, status = "payment_declined", 402


class AlreadyOwnsAgency(Conflict):
    code = "already_owns_agency"


class AlreadyHasFreelancerAccount(Conflict):
    code = "already_has_freelancer_account"


class AlreadyMember(Conflict):
    code = "already_member"


class AlreadyInvited(Conflict):
    code = "already_invited"


class InvitationClosed(Conflict):
    code = "invitation_closed"


class AlreadyApplied(Conflict):
    code = "already_applied"


class JobNotOpen(Conflict):
    code = "job_not_open"


class ProposalNotActive(Conflict):
    code = "proposal_not_active"


class HoldEnded(Conflict):
    code = "hold_ended"


class AuctionClosed(Conflict):
    code = "auction_closed"


class PlanNotAllowed(Conflict):
    code = "plan_not_allowed"


class NotAMember(Conflict):
    code = "not_a_member"


class CannotSubmitOnBehalf(Forbidden):
    code = "cannot_submit_on_behalf"


class OwnerIsPermanent(Conflict):
    code = "owner_is_permanent"


class NoBillingMethod(Conflict):
    code = "no_billing_method"


class BundleNotAllowed(Conflict):
    code = "bundle_not_allowed"


def all_error_classes() -> list[type[ConnectsError]]:
    """Every concrete error class, for docs and tests."""
    out: list[type[ConnectsError]] = []
    stack: list[type[ConnectsError]] = [ConnectsError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out


class PlanCannotPurchase(Conflict):
    code = "plan_cannot_purchase"


class AgencyOnly(Conflict):
    code = "agency_only"


class FreelancerOnly(Conflict):
    code = "freelancer_only"


class PerTopUpExceeded(Conflict):
    """The business manager asked for more than one top-up may buy (R48)."""

    code = "per_topup_exceeded"


class MonthlyLimitReached(Conflict):
    """The business manager's purchase, with this month's top-ups, would pass the
    owner's monthly limit (R48)."""

    code = "monthly_limit_reached"


class RateLimited(ConnectsError):
    """Too many sign-in or sign-up attempts from one address or for one e-mail.

    ``details.retry_after`` (seconds) is also sent as the ``Retry-After`` header.
    """

    code, status = "rate_limited", 429


class EmailNotConfigured(Conflict):
    """An e-mail channel was asked for, but the operator has set no SMTP server
    (``CONNECTS_SMTP_URL``, R47): nothing could be sent to it."""

    code = "email_not_configured"
