"""care flags

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 13:24:37.243608
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('care_flags',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=80), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_care_flags_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_care_flags_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_flags'))
    )
    with op.batch_alter_table('care_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_care_flags_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index('ix_care_flags_study_raised', ['study_id', 'raised_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('care_flags', schema=None) as batch_op:
        batch_op.drop_index('ix_care_flags_study_raised')
        batch_op.drop_index(batch_op.f('ix_care_flags_participant_id'))

    op.drop_table('care_flags')
