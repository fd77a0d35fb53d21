"""graph tables: entities, relations, entity-chunk links (the SQL graph backend)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 15:37:52.946606

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('graph_entities',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('kb_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('norm', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('graph_entities', schema=None) as batch_op:
        batch_op.create_index('ix_graph_entities_kb_norm', ['tenant_id', 'kb_id', 'norm'], unique=False)

    op.create_table('graph_links',
    sa.Column('entity_id', sa.String(length=32), nullable=False),
    sa.Column('chunk_id', sa.String(length=32), nullable=False),
    sa.Column('doc_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('kb_id', sa.String(length=32), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['graph_entities.id'], ),
    sa.PrimaryKeyConstraint('entity_id', 'chunk_id')
    )
    with op.batch_alter_table('graph_links', schema=None) as batch_op:
        batch_op.create_index('ix_graph_links_doc', ['doc_id'], unique=False)

    op.create_table('graph_relations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('kb_id', sa.String(length=32), nullable=False),
    sa.Column('head_id', sa.String(length=32), nullable=False),
    sa.Column('tail_id', sa.String(length=32), nullable=False),
    sa.Column('relation', sa.String(length=200), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('chunk_id', sa.String(length=32), nullable=False),
    sa.Column('doc_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['head_id'], ['graph_entities.id'], ),
    sa.ForeignKeyConstraint(['tail_id'], ['graph_entities.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('graph_relations', schema=None) as batch_op:
        batch_op.create_index('ix_graph_relations_doc', ['doc_id'], unique=False)
        batch_op.create_index('ix_graph_relations_head', ['head_id', 'weight'], unique=False)
        batch_op.create_index('ix_graph_relations_tail', ['tail_id', 'weight'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('graph_relations', schema=None) as batch_op:
        batch_op.drop_index('ix_graph_relations_tail')
        batch_op.drop_index('ix_graph_relations_head')
        batch_op.drop_index('ix_graph_relations_doc')

    op.drop_table('graph_relations')
    with op.batch_alter_table('graph_links', schema=None) as batch_op:
        batch_op.drop_index('ix_graph_links_doc')

    op.drop_table('graph_links')
    with op.batch_alter_table('graph_entities', schema=None) as batch_op:
        batch_op.drop_index('ix_graph_entities_kb_norm')

    op.drop_table('graph_entities')
