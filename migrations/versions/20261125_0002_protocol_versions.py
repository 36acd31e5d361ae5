"""protocol versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:59:51.955273
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('protocol_versions',
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_protocol_versions_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protocol_versions')),
    sa.UniqueConstraint('study_id', 'version', name=op.f('uq_protocol_versions_study_id_version'))
    )
    with op.batch_alter_table('protocol_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_protocol_versions_study_id'), ['study_id'], unique=False)

    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('protocol_version', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_participants_study_id_protocol_versions'), 'protocol_versions', ['study_id', 'protocol_version'], ['study_id', 'version'], ondelete='RESTRICT')

    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_protocol_version', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_column('active_protocol_version')

    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_participants_study_id_protocol_versions'), type_='foreignkey')
        batch_op.drop_column('protocol_version')

    with op.batch_alter_table('protocol_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_protocol_versions_study_id'))

    op.drop_table('protocol_versions')
