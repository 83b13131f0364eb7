"""Results (R39): what the Connects bought, in total and by group."""

from __future__ import annotations

from pydantic import Field

from connects.api.schemas.base import Model, UtcTime


class MoneyAmount(Model):
    amount: int = Field(description="Whole cents, rounded half up.")
    currency: str


class ResultFigures(Model):
    proposals: int = Field(description="Proposals sent in the period.")
    connects_spent: int = Field(description="Their price in Connects, net of returns.")
    boost_connects_spent: int = Field(description="Their captured boosts, net of returns.")
    views: int = Field(
        description="Proposals the client looked at (viewed, interviewed, declined or hired)."
    )
    interviews: int
    hires: int
    connects_per_interview: float | None = Field(
        description="(connects_spent + boost_connects_spent) / interviews, 2 places;"
        " null without one."
    )
    connects_per_hire: float | None = Field(description="The same per hire; null without one.")
    cost_per_hire: MoneyAmount | None = Field(
        description="What those Connects cost (R39 cost basis) per hire; null without one."
    )


class ResultGroup(ResultFigures):
    key: str = Field(description="A member's user id, `boosted`/`not_boosted`, or `YYYY-MM`.")


class Results(Model):
    since: UtcTime = Field(alias="from", description="The period's start (inclusive).")
    until: UtcTime = Field(alias="to", description="The period's end (exclusive).")
    totals: ResultFigures
    groups: list[ResultGroup]
