"""phones: customers' phones and phone-based customer keys brought to E.164

Before this, phones were stored as written ("+86 138 0000 0001"), so a verified caller whose
caller id read "13800000001" was not found as that customer. From now on every phone is
stored in E.164 (hub.phones); this brings the stored ones there too. A phone that does not
read as a number is left as it was. Down: nothing to undo (both forms are the same number).

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

from hub.phones import as_phone

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_PHONE_KEYS = ("phone:", "hotline:")  # a verified phone; a hotline caller's id


def upgrade() -> None:
    conn = op.get_bind()
    customers = sa.table("customers", sa.column("id", sa.String), sa.column("phone", sa.String))
    for customer_id, phone in conn.execute(
            sa.select(customers.c.id, customers.c.phone).where(customers.c.phone.is_not(None))):
        e164 = as_phone(phone)
        if e164 and e164 != phone:
            conn.execute(customers.update().where(customers.c.id == customer_id)
                         .values(phone=e164))
    tickets = sa.table("tickets", sa.column("id", sa.Integer),
                       sa.column("customer_key", sa.String))
    for prefix in _PHONE_KEYS:
        for ticket_id, key in conn.execute(
                sa.select(tickets.c.id, tickets.c.customer_key)
                .where(tickets.c.customer_key.startswith(prefix))):
            e164 = as_phone(key.removeprefix(prefix))
            if e164 and f"{prefix}{e164}" != key:
                conn.execute(tickets.update().where(tickets.c.id == ticket_id)
                             .values(customer_key=f"{prefix}{e164}"))


def downgrade() -> None:
    pass
