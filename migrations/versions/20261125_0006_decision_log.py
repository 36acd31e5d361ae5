"""decision log smart assignments pai scores

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 13:19:47.487214
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pai_scores',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('protocol_version', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('scores', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('recommendation', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_pai_scores_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pai_scores'))
    )
    with op.batch_alter_table('pai_scores', schema=None) as batch_op:
        batch_op.create_index('ix_pai_scores_participant_computed', ['participant_id', 'computed_at'], unique=False)

    op.create_table('smart_assignments',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('protocol_version', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.String(length=64), nullable=False),
    sa.Column('previous_stage_id', sa.String(length=64), nullable=True),
    sa.Column('previous_track', sa.String(length=64), nullable=True),
    sa.Column('responder', sa.Boolean(), nullable=True),
    sa.Column('responder_error', sa.Text(), nullable=True),
    sa.Column('tailoring', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('probabilities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('draw', sa.Double(), nullable=False),
    sa.Column('track', sa.String(length=64), nullable=False),
    sa.Column('decision_id', sa.Uuid(), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_smart_assignments_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_smart_assignments_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smart_assignments')),
    sa.UniqueConstraint('participant_id', 'stage_id', name=op.f('uq_smart_assignments_participant_id_stage_id'))
    )
    op.create_table('decisions',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('scheduled_item_id', sa.Uuid(), nullable=True),
    sa.Column('decision_point_id', sa.String(length=64), nullable=False),
    sa.Column('decision_index', sa.Integer(), nullable=True),
    sa.Column('planned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('local_time', sa.String(length=40), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('protocol_version', sa.Integer(), nullable=True),
    sa.Column('study_day', sa.Integer(), nullable=True),
    sa.Column('stage', sa.String(length=64), nullable=True),
    sa.Column('track', sa.String(length=64), nullable=True),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('unavailable_reason', sa.Text(), nullable=True),
    sa.Column('tailoring', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('tailoring_defaulted', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('pai_recommendation', sa.String(length=64), nullable=True),
    sa.Column('rule_id', sa.String(length=64), nullable=True),
    sa.Column('declared_probabilities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('excluded', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('probabilities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('randomized', sa.Boolean(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('draw', sa.Double(), nullable=True),
    sa.Column('option_id', sa.String(length=64), nullable=True),
    sa.Column('probability', sa.Double(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('fallback', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_decisions_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scheduled_item_id'], ['scheduled_items.id'], name=op.f('fk_decisions_scheduled_item_id_scheduled_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_decisions_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions')),
    sa.UniqueConstraint('scheduled_item_id', name=op.f('uq_decisions_scheduled_item_id'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index('ix_decisions_participant_decided', ['participant_id', 'decided_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_decisions_participant_decided')

    op.drop_table('decisions')
    op.drop_table('smart_assignments')
    with op.batch_alter_table('pai_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_pai_scores_participant_computed')

    op.drop_table('pai_scores')
