"""ingestion scheduling and outbox tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:13:34.703216
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scheduled_items',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('protocol_version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('slot_key', sa.String(length=160), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('questionnaire_id', sa.String(length=64), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('draw', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=120), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_scheduled_items_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_scheduled_items_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_items')),
    sa.UniqueConstraint('participant_id', 'slot_key', name=op.f('uq_scheduled_items_participant_id_slot_key'))
    )
    with op.batch_alter_table('scheduled_items', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_items_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_scheduled_items_participant_id'), ['participant_id'], unique=False)

    op.create_table('wearable_summaries',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.Column('source_format', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_wearable_summaries_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_wearable_summaries_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wearable_summaries')),
    sa.UniqueConstraint('participant_id', 'metric', 'start_at', 'end_at', name=op.f('uq_wearable_summaries_participant_id_metric_start_at_end_at'))
    )
    with op.batch_alter_table('wearable_summaries', schema=None) as batch_op:
        batch_op.create_index('ix_wearable_summaries_participant_metric_end', ['participant_id', 'metric', 'end_at'], unique=False)

    op.create_table('ema_responses',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('prompt_id', sa.Uuid(), nullable=True),
    sa.Column('questionnaire_id', sa.String(length=64), nullable=False),
    sa.Column('questionnaire_version', sa.Integer(), nullable=False),
    sa.Column('protocol_version', sa.Integer(), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('utc_offset_minutes', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_ema_responses_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prompt_id'], ['scheduled_items.id'], name=op.f('fk_ema_responses_prompt_id_scheduled_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_ema_responses_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ema_responses')),
    sa.UniqueConstraint('participant_id', 'client_id', name=op.f('uq_ema_responses_participant_id_client_id'))
    )
    with op.batch_alter_table('ema_responses', schema=None) as batch_op:
        batch_op.create_index('ix_ema_responses_participant_answered', ['participant_id', 'answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ema_responses_prompt_id'), ['prompt_id'], unique=False)

    op.create_table('notifications',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('scheduled_item_id', sa.Uuid(), nullable=True),
    sa.Column('decision_id', sa.Uuid(), nullable=True),
    sa.Column('option_id', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('deep_link', sa.String(length=500), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_notifications_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scheduled_item_id'], ['scheduled_items.id'], name=op.f('fk_notifications_scheduled_item_id_scheduled_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_notifications_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index('ix_notifications_participant_created', ['participant_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_scheduled_item_id'), ['scheduled_item_id'], unique=False)
        batch_op.create_index('ix_notifications_sendable', ['status', 'send_at'], unique=False)

    op.create_table('ema_answers',
    sa.Column('response_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('questionnaire_id', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('numeric_value', sa.Double(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_ema_answers_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['response_id'], ['ema_responses.id'], name=op.f('fk_ema_answers_response_id_ema_responses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ema_answers')),
    sa.UniqueConstraint('response_id', 'item_id', name=op.f('uq_ema_answers_response_id_item_id'))
    )
    with op.batch_alter_table('ema_answers', schema=None) as batch_op:
        batch_op.create_index('ix_ema_answers_participant_item_time', ['participant_id', 'item_id', 'answered_at'], unique=False)

    op.create_table('engagement_events',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('notification_id', sa.Uuid(), nullable=True),
    sa.Column('prompt_id', sa.Uuid(), nullable=True),
    sa.Column('exercise_id', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_seconds', sa.Double(), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_engagement_events_notification_id_notifications'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_engagement_events_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prompt_id'], ['scheduled_items.id'], name=op.f('fk_engagement_events_prompt_id_scheduled_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_engagement_events_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engagement_events')),
    sa.UniqueConstraint('participant_id', 'client_id', name=op.f('uq_engagement_events_participant_id_client_id'))
    )
    with op.batch_alter_table('engagement_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_engagement_events_notification_id'), ['notification_id'], unique=False)
        batch_op.create_index('ix_engagement_events_participant_time', ['participant_id', 'occurred_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('engagement_events', schema=None) as batch_op:
        batch_op.drop_index('ix_engagement_events_participant_time')
        batch_op.drop_index(batch_op.f('ix_engagement_events_notification_id'))

    op.drop_table('engagement_events')
    with op.batch_alter_table('ema_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_ema_answers_participant_item_time')

    op.drop_table('ema_answers')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_sendable')
        batch_op.drop_index(batch_op.f('ix_notifications_scheduled_item_id'))
        batch_op.drop_index('ix_notifications_participant_created')
        batch_op.drop_index(batch_op.f('ix_notifications_decision_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('ema_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ema_responses_prompt_id'))
        batch_op.drop_index('ix_ema_responses_participant_answered')

    op.drop_table('ema_responses')
    with op.batch_alter_table('wearable_summaries', schema=None) as batch_op:
        batch_op.drop_index('ix_wearable_summaries_participant_metric_end')

    op.drop_table('wearable_summaries')
    with op.batch_alter_table('scheduled_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduled_items_participant_id'))
        batch_op.drop_index('ix_scheduled_items_due')

    op.drop_table('scheduled_items')
