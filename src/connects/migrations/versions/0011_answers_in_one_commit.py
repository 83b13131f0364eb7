"""idempotency keys are written with their answer: no key is ever in flight (R31)

A key's row is now inserted, with the status and body of its answer, in the same
transaction as the change it guards. Rows without an answer were the old "in flight"
claims of requests that never finished (their process was killed): nothing committed
refers to them, so they are deleted and their retry runs afresh, as it would have once
the claim went stale. ``status_code`` stays nullable so that the downgrade needs no
rewrite.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 07:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys WHERE status_code IS NULL")


def downgrade() -> None:
    pass  # the rows deleted were claims of requests that never answered
