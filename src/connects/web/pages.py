"""What each dashboard page shows: plain dictionaries for the templates.

Every value comes from the read side (:mod:`connects.services.views`, the top-up and
notification services, :mod:`connects.web.queries`); nothing here decides a rule. The
form handlers call the same builders to re-render a section after a change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connects.domain.calendar import EXPIRING_WINDOW
from connects.domain.lots import expires_soon
from connects.domain.policy import ASSIGNABLE_ROLES, PURCHASE_PERMISSION, Action, allows
from connects.domain.topup import DEFAULT_PER_TOPUP, TOPUP_MANAGER_ID
from connects.domain.vocabulary import BlockedReason, EntryKind
from connects.services import topup_status, topups, views
from connects.services.context import Context
from connects.web import forecast, notifications_bridge, queries
from connects.web.viewer import Viewer

TOPUP_TRIGGERS = {
    "balance_zero": "balance hit zero",
    "threshold": "balance at threshold",
    "just_in_time": "just in time (proposal)",
}


def autotopup(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """The three set-up steps of seed 000 with where this account stands on each."""
    settings = topups.get_settings(ctx, viewer.actor, viewer.account_id)
    grant: dict[str, Any] | None = None
    if viewer.can_manage:
        live = [
            g
            for g in topups.list_grants(ctx, viewer.actor, viewer.account_id)
            if g["grantee"] == TOPUP_MANAGER_ID
            and PURCHASE_PERMISSION in g["permissions"]
            and g["status"] != "revoked"
        ]
        grant = live[-1] if live else None
    if viewer.can_manage:
        grant_step = (
            "todo" if grant is None else ("done" if grant["status"] == "active" else "waiting")
        )
    else:  # members see whether step 1 is done, not the grant itself
        block = topup_status.grant_block_of(ctx, viewer.account_id)
        grant_step = {None: "done", BlockedReason.GRANT_PENDING: "waiting"}.get(block, "todo")
    enabled = bool(settings["enabled"])
    if enabled:
        enable_step = "done"
    else:
        # Guide the order of seed 000: switch on once permission is granted.
        enable_step = "todo" if grant is not None or not viewer.can_manage else "locked"
    return {
        "settings": settings,
        "max_purchase": ctx.max_purchase,  # one top-up is one purchase (R43)
        "grant": grant,
        "grantee": TOPUP_MANAGER_ID,
        "permission": PURCHASE_PERMISSION,
        # The limits apply (with the seed's defaults) from the moment it is switched on.
        "steps": {
            "grant": grant_step,
            "enable": enable_step,
            "limits": "done" if enabled else "locked",
        },
    }


def connects(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """The Connects page (R26): the numbers, the chart, the forecast, auto top-up."""
    account_id = viewer.account_id
    return {
        "account": views.account(ctx, viewer.actor, account_id),
        "overview": views.overview(ctx, viewer.actor, account_id),
        "forecast": forecast.burn_forecast(ctx, viewer.actor, account_id),
        "series": queries.balance_series(ctx, viewer.actor, account_id),
        "recent_topups": topups.history(ctx, viewer.actor, account_id, limit=5)["items"],
        "triggers": TOPUP_TRIGGERS,
        **autotopup(ctx, viewer),
    }


def topups_list(ctx: Context, viewer: Viewer, cursor: str | None) -> dict[str, Any]:
    page = topups.history(ctx, viewer.actor, viewer.account_id, limit=50, cursor=cursor)
    return {"items": page["items"], "next_cursor": page["next_cursor"], "triggers": TOPUP_TRIGGERS}


def topups_page(ctx: Context, viewer: Viewer, cursor: str | None) -> dict[str, Any]:
    """The history with this month's use of the monthly limit, as the overview counts it
    (bought, the limit, what is left: the one count the trigger checks, R21, R48)."""
    usage = views.overview(ctx, viewer.actor, viewer.account_id)["auto_topup"]
    return {
        **topups_list(ctx, viewer, cursor),
        "settings": usage,
        "account": views.account(ctx, viewer.actor, viewer.account_id),
    }


def history(
    ctx: Context, viewer: Viewer, kind: str | None, member: str | None, cursor: str | None
) -> dict[str, Any]:
    """The ledger page; an unknown filter is the engine's ``invalid_request``."""
    people = views.members(ctx, viewer.actor, viewer.account_id)
    names = {m["user_id"]: m["name"] for m in people}
    page = views.history(
        ctx, viewer.actor, viewer.account_id, limit=50, cursor=cursor, kind=kind, member_id=member
    )
    return {
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "kinds": [k.value for k in EntryKind],
        "members": people,
        "names": names,
        "kind": kind or "",
        "member": member or "",
    }


def expiry(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """Live lots by expiry month; those inside the 30-day window flagged (R12)."""
    data = views.expiring(ctx, viewer.actor, viewer.account_id, all_lots=True)
    now = ctx.now()
    months: dict[str, dict[str, Any]] = {}
    for lot in data["lots"]:
        key = lot["expires_at"].strftime("%Y-%m")
        month = months.setdefault(
            key, {"key": key, "label": lot["expires_at"].strftime("%B %Y"), "total": 0, "lots": []}
        )
        month["total"] += lot["remaining"]
        month["lots"].append({**lot, "soon": expires_soon(lot["expires_at"], now)})
    return {
        "within_30d": data["within_30d"],
        "months": list(months.values()),
        "total": sum(m["total"] for m in months.values()),
        "window_ends": now + EXPIRING_WINDOW,
        "next_year": now + timedelta(days=365),
    }


def members(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """Members with role, budget and this month's spend; the spend chart's data; for the
    owner and admins the open invitations and the roles they may give (R3, R49)."""
    people = views.members(ctx, viewer.actor, viewer.account_id)
    invited = (
        views.open_invitations(ctx, viewer.actor, viewer.account_id) if viewer.can_manage else []
    )
    return {
        "members": people,
        "invitations": invited,
        # Each role a member may be given, with what it allows (R3).
        "roles": [
            {
                "value": r.value,
                "hint": "buys Connects and changes every setting"
                if allows(r, Action.MANAGE)
                else "uses the pool; buys nothing",
            }
            for r in ASSIGNABLE_ROLES
        ],
        "chart": {
            "labels": [m["name"] for m in people],
            "spent": [m["spent_this_month"] for m in people],
            "budget": [m["monthly_budget"] for m in people],
        },
    }


def invitations(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """The invitations waiting for the signed-in person's answer (R49)."""
    return {"invitations": views.invitations_of(ctx, viewer.session.user_id)}


def buy(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """The purchase form: earnings, cards, the plan's unit price."""
    account = views.account(ctx, viewer.actor, viewer.account_id)
    plan = ctx.catalog.get(account["plan"])
    cards = views.billing_methods(ctx, viewer.actor, viewer.account_id) if viewer.can_manage else []
    return {
        "account": account,
        "plan": plan,
        "cards": cards,
        "overview": views.overview(ctx, viewer.actor, viewer.account_id),
        "max_purchase": ctx.max_purchase,  # R43
        "default_quantity": DEFAULT_PER_TOPUP,
    }


def notifications(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """Channels and toggles, or the 'not available yet' state."""
    return notifications_bridge.page(ctx, viewer)
