"""The composition root: settings in, a wired :class:`Context` out.

The two registries below are the one place that says which handler runs each command
and which reactions follow each event (handled after commit, :mod:`connects.services.
messagebus`). A new command or reaction is a function in the service module of its
concept and a line here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connects.config import Settings
from connects.db.clockstore import DatabaseClock
from connects.db.engine import Database
from connects.db.migrate import upgrade
from connects.domain import commands as c
from connects.domain import events as e
from connects.domain.clock import Clock, SystemClock
from connects.gateway import PaymentGateway, SimulatedGateway
from connects.notify.channels import LiveNotifier, Notifier
from connects.services import (
    accounts,
    badge,
    billing,
    invitations,
    jobs,
    notifications,
    proposal_actions,
    proposals,
    purchases,
    topup_recovery,
    topup_runner,
    topups,
)
from connects.services.context import Context
from connects.services.messagebus import CommandHandler, MessageBus, Reaction

COMMAND_HANDLERS: Mapping[type[c.Command[Any]], CommandHandler] = {
    c.CreateUser: accounts.create_user,
    c.OpenAccount: accounts.create_account,
    c.UpdateAccount: accounts.update_account,
    c.InviteMember: invitations.invite_member,
    c.AcceptInvitation: invitations.accept_invitation,
    c.DeclineInvitation: invitations.decline_invitation,
    c.ChangeRole: accounts.change_role,
    c.RemoveMember: accounts.remove_member,
    c.SetBudget: accounts.set_budget,
    c.CreditEarnings: accounts.credit_earnings,
    c.PostJob: jobs.post_job,
    c.ChangeJobPrice: jobs.change_price,
    c.StartInterview: jobs.start_interview,
    c.EndJob: jobs.end_job,
    c.SubmitProposal: proposals.submit_proposal,
    c.WithdrawProposal: proposals.withdraw,
    c.RaiseBoost: proposal_actions.raise_boost,
    c.RecordOutcome: proposal_actions.record_outcome,
    c.SetBadge: badge.set_badge,
    c.SetBadgePrice: badge.set_price,
    c.AddBillingMethod: billing.add_billing_method,
    c.SetDefaultBillingMethod: billing.set_default,
    c.RemoveBillingMethod: billing.remove,
    c.BuyConnects: purchases.buy,
    c.GrantPermissions: topups.create_grant,
    c.RevokeGrant: topups.revoke_grant,
    c.SetAutoTopUp: topups.put_settings,
    c.ResumeAutoTopUp: topups.resume,
    c.AddChannel: notifications.add_channel,
    c.RemoveChannel: notifications.delete_channel,
    c.SendTestNotification: notifications.test_send,
    c.SetNotificationSettings: notifications.put_settings,
}

EVENT_HANDLERS: Mapping[type[e.Event], Sequence[Reaction]] = {
    e.TopUpDecided: [topup_runner.on_decided],  # R20, R23: buy, exactly once
    # R41: a grant, a card, the settings or a resume may let a waiting top-up buy
    e.TopUpConditionsChanged: [topup_recovery.on_conditions_changed],
}


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    gateway: PaymentGateway | None = None,
    notifier: Notifier | None = None,
    migrate: bool = False,
) -> Context:
    """Wire storage, the clock, the plan catalog, the payment gateway and the bus."""
    settings = settings or Settings()
    if migrate:
        upgrade(settings.database_url)
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        failover_seconds=settings.db_failover_seconds,
        transaction_pooler=settings.db_transaction_pooler,
        read_url=settings.read_database_url,
    )
    if clock is None:
        # The simulated clock lives in the database, so every process sees one time (R33).
        clock = DatabaseClock(db) if settings.clock == "simulated" else SystemClock()
    ctx = Context(
        db=db,
        clock=clock,
        catalog=settings.catalog(),
        gateway=gateway or SimulatedGateway(db, clock),
        grant_sync_delay_seconds=settings.grant_sync_delay_seconds,
        topup_retry_seconds=settings.topup_retry_seconds,
        secret_key=settings.secret_key,
        allow_private_webhooks=settings.allow_private_webhooks,
        idempotency_retention_hours=settings.idempotency_retention_hours,
        max_purchase=settings.max_purchase,
        boost_max_bid=settings.boost_max_bid,
        auction_days=settings.auction_days,
        notifier=notifier
        or LiveNotifier(allow_private=settings.allow_private_webhooks, mail=settings.mail_server()),
    )
    ctx.bus = MessageBus(COMMAND_HANDLERS, EVENT_HANDLERS)
    return ctx
