"""The plan catalog (R7): what each plan grants, caps, costs and allows.

The catalog comes from configuration (a TOML file, see ``connects.config``); the
defaults below are the ones SPEC.md R7 names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connects.domain.errors import InvalidRequest, PlanNotAllowed

ACCOUNT_KINDS = ("freelancer", "agency")
# The most Connects one purchase buys, on every path (API, dashboard, the business
# manager, auto top-up): a typo of an extra zero is refused, not charged (R43). The
# operator sets it (``CONNECTS_MAX_PURCHASE``).
DEFAULT_MAX_PURCHASE = 10_000


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    kind: str  # "freelancer" | "agency": plans are enrolled per account kind (R7)
    price_cents: int = 0
    monthly_connects: int = 0
    rollover_cap: int | None = None  # None: everything rolls over (R9)
    unit_price_cents: int = 15
    currency: str = "USD"
    submit_on_behalf: bool = False
    interview_reward: int = 0  # Connects credited when a client interviews (R16)
    can_purchase: bool = True
    bundle_sizes: tuple[int, ...] = ()  # empty: any quantity >= 1 (R18)

    def check_quantity(self, quantity: int, max_purchase: int = DEFAULT_MAX_PURCHASE) -> None:
        """Refuse a purchase quantity the plan does not sell (R18) or above
        ``max_purchase`` (R43); ``details.fields`` says why, as the settings do."""
        from connects.domain.errors import BundleNotAllowed, PlanCannotPurchase

        if not self.can_purchase:
            raise PlanCannotPurchase(f"the {self.id} plan does not sell extra Connects")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            why = "must be a whole number of at least 1"
            raise InvalidRequest(f"quantity {why}", field="quantity", fields={"quantity": why})
        if quantity > max_purchase:
            why = f"cannot be more than {max_purchase:,}, the most one purchase buys"
            raise InvalidRequest(
                f"quantity {why}",
                field="quantity",
                fields={"quantity": why},
                max_purchase=max_purchase,
            )
        if self.bundle_sizes and quantity not in self.bundle_sizes:
            raise BundleNotAllowed(
                f"the {self.id} plan sells Connects in bundles of {list(self.bundle_sizes)}",
                allowed=list(self.bundle_sizes),
            )

    def cost_cents(self, quantity: int) -> int:
        return quantity * self.unit_price_cents


DEFAULT_PLANS: dict[str, dict[str, Any]] = {
    "freelancer-basic": {"kind": "freelancer", "monthly_connects": 10},
    "freelancer-plus": {"kind": "freelancer", "price_cents": 2000, "monthly_connects": 100},
    "agency-basic": {"kind": "agency", "can_purchase": False},
    "agency-plus": {
        "kind": "agency",
        "price_cents": 2000,
        "monthly_connects": 80,
        "rollover_cap": 160,
        "unit_price_cents": 100,
        "submit_on_behalf": True,
    },
}


def _by_price(plan: Plan) -> tuple[int, str]:
    return (plan.price_cents, plan.id)


@dataclass(frozen=True)
class Catalog:
    plans: Mapping[str, Plan] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Mapping[str, Any]]) -> Catalog:
        """Build a catalog from ``{plan_id: {field: value}}`` (TOML tables)."""
        plans: dict[str, Plan] = {}
        for plan_id, spec in raw.items():
            values = dict(spec)
            if values.get("kind") not in ACCOUNT_KINDS:
                raise ValueError(f"plan {plan_id}: kind must be one of {ACCOUNT_KINDS}")
            if "bundle_sizes" in values:
                values["bundle_sizes"] = tuple(values["bundle_sizes"])
            for key in ("price_cents", "monthly_connects", "unit_price_cents", "interview_reward"):
                if int(values.get(key, 0)) < 0:
                    raise ValueError(f"plan {plan_id}: {key} must be >= 0")
            plans[plan_id] = Plan(id=plan_id, **values)
        return cls(plans)

    @classmethod
    def from_file_tables(cls, raw: Mapping[str, Any]) -> Catalog:
        """A catalog from a plans file's TOML: ``[plans.<id>]`` tables (or the plan
        tables at the top), replacing R7's defaults; with ``extends = "defaults"`` each
        table changes only the fields it names of a default plan (or adds a plan)."""
        tables = raw.get("plans", raw)
        extends = raw.get("extends")
        if extends is None:
            return cls.from_mapping(tables)
        if extends != "defaults":
            raise ValueError(f'extends must be "defaults", not {extends!r}')
        merged = {pid: dict(spec) for pid, spec in DEFAULT_PLANS.items()}
        for plan_id, spec in tables.items():
            if not isinstance(spec, Mapping):
                raise ValueError(f"plan {plan_id}: expected a table of fields")
            merged[plan_id] = {**merged.get(plan_id, {}), **spec}
        return cls.from_mapping(merged)

    @classmethod
    def default(cls) -> Catalog:
        return cls.from_mapping(DEFAULT_PLANS)

    def get(self, plan_id: str) -> Plan:
        try:
            return self.plans[plan_id]
        except KeyError:
            raise PlanNotAllowed(
                f"unknown plan {plan_id!r}", plan=plan_id, known=sorted(self.plans)
            ) from None

    def for_kind(self, plan_id: str, kind: str) -> Plan:
        """The plan, refused when it is not for this kind of account (R7)."""
        plan = self.get(plan_id)
        if plan.kind != kind:
            raise PlanNotAllowed(
                f"plan {plan_id} is for {plan.kind} accounts, not {kind} accounts",
                plan=plan_id,
                kind=kind,
            )
        return plan

    def of_kind(self, kind: str) -> list[Plan]:
        """The plans an account of ``kind`` may be on (R7), cheapest first."""
        return sorted((p for p in self.plans.values() if p.kind == kind), key=_by_price)

    def default_for(self, kind: str) -> str:
        """The free plan of a kind: ``<kind>-basic`` if present, else the cheapest."""
        if f"{kind}-basic" in self.plans:
            return f"{kind}-basic"
        candidates = [(p.price_cents, p.id) for p in self.of_kind(kind)]
        if not candidates:
            raise PlanNotAllowed(f"no plan for {kind} accounts")
        return candidates[0][1]
