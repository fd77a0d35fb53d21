"""document access lists and key principals: who inside a tenant may read a document

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema; every existing document stays readable by the whole tenant."""
    op.create_table(
        'document_acl',
        sa.Column('doc_id', sa.String(length=32), nullable=False),
        sa.Column('entry', sa.String(length=210), nullable=False),
        sa.ForeignKeyConstraint(['doc_id'], ['documents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('doc_id', 'entry'),
    )
    op.create_index('ix_document_acl_entry', 'document_acl', ['entry', 'doc_id'], unique=False)
    op.execute("INSERT INTO document_acl (doc_id, entry) SELECT id, '*' FROM documents")
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('groups', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('groups')
        batch_op.drop_column('user_id')
    op.drop_index('ix_document_acl_entry', table_name='document_acl')
    op.drop_table('document_acl')
