"""graph links by weight: an entity's strongest chunk links come straight from an index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:20:00

"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('graph_links', schema=None) as batch_op:
        batch_op.create_index('ix_graph_links_entity_weight', ['entity_id', 'weight', 'chunk_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('graph_links', schema=None) as batch_op:
        batch_op.drop_index('ix_graph_links_entity_weight')
