"""webhook secrets from before Standard Webhooks keep signing with the same key (R46)

``channels.secret_raw`` (boolean, not null, default false): webhook deliveries are now
signed as Standard Webhooks v1, whose secrets are ``whsec_<base64>`` and whose HMAC key
is the base64-decoded part. A secret stored before was any text (the generated ones
``whsec_`` + URL-safe base64, the chosen ones anything of 16 to 200 characters), used
as its own UTF-8 bytes. The secrets are encrypted under ``CONNECTS_SECRET_KEY``, which
a migration does not have, so they are not rewritten: every channel that has one is
marked ``secret_raw``, and the code reads such a secret as ``whsec_`` + the base64 of
its bytes, the very key it signed with before (``connects.notify.webhooks.open_secret``).
Its receiver keeps the secret it has and verifies with
``standardwebhooks.Webhook(old_secret.encode())``. Channels made from now on store a
``whsec_`` secret and are not marked. The downgrade drops the column.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "channels",
        sa.Column("secret_raw", sa.Boolean(), nullable=False, server_default="0"),
    )
    channels = sa.table(
        "channels", sa.column("secret_encrypted", sa.Text), sa.column("secret_raw", sa.Boolean)
    )
    op.execute(
        channels.update().where(channels.c.secret_encrypted.is_not(None)).values(secret_raw=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch_op:
        batch_op.drop_column("secret_raw")
