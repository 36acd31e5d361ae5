"""scheduling and delivery

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 13:19:04.326764
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('schedule_horizons',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('planned_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_schedule_horizons_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_schedule_horizons'))
    )
    with op.batch_alter_table('schedule_horizons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_horizons_planned_until'), ['planned_until'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('retry_after_seconds', sa.Double(), nullable=True),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_delivery_attempts_device_id_devices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_delivery_attempts_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_attempts_notification_id'), ['notification_id'], unique=False)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unreachable_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('unreachable_reason', sa.String(length=200), nullable=True))

    with op.batch_alter_table('scheduled_items', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_items_unanswered', ['expires_at'], unique=False, sqlite_where=sa.text("status = 'done' AND answered_at IS NULL AND kind = 'ema_prompt'"), postgresql_where=sa.text("status = 'done' AND answered_at IS NULL AND kind = 'ema_prompt'"))



def downgrade() -> None:
    with op.batch_alter_table('scheduled_items', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_items_unanswered', sqlite_where=sa.text("status = 'done' AND answered_at IS NULL AND kind = 'ema_prompt'"), postgresql_where=sa.text("status = 'done' AND answered_at IS NULL AND kind = 'ema_prompt'"))

    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_column('unreachable_reason')
        batch_op.drop_column('unreachable_since')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('next_attempt_at')

    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_attempts_notification_id'))

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('schedule_horizons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_horizons_planned_until'))

    op.drop_table('schedule_horizons')
