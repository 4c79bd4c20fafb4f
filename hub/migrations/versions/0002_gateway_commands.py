"""gateway commands: what the hub sent each gateway and what it reported back

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gateway_sync',
    sa.Column('site', sa.String(length=32), nullable=False),
    sa.Column('gateway_id', sa.String(length=32), nullable=False),
    sa.Column('manifest_version', sa.Integer(), nullable=False),
    sa.Column('manifest_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('manifest_items', sa.JSON(), nullable=False),
    sa.Column('config_version', sa.Integer(), nullable=False),
    sa.Column('config_desired', sa.JSON(), nullable=False),
    sa.Column('config_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('model_desired', sa.String(length=64), nullable=True),
    sa.Column('model_sha256', sa.String(length=64), nullable=True),
    sa.Column('model_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resync_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reported_config_version', sa.Integer(), nullable=True),
    sa.Column('reported_config_status', sa.String(length=16), nullable=True),
    sa.Column('reported_config_error', sa.Text(), nullable=True),
    sa.Column('reported_active_version', sa.Integer(), nullable=True),
    sa.Column('reported_pending', sa.Boolean(), nullable=True),
    sa.Column('reported_settings', sa.JSON(), nullable=True),
    sa.Column('reported_model_version', sa.String(length=64), nullable=True),
    sa.Column('reported_manifest_version', sa.Integer(), nullable=True),
    sa.Column('reported_manifest_items', sa.Integer(), nullable=True),
    sa.Column('reported_command', sa.JSON(), nullable=True),
    sa.Column('reported_ts', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('site', 'gateway_id')
    )


def downgrade() -> None:
    op.drop_table('gateway_sync')
