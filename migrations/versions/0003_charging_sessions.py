"""Charging sessions: id tags and each company's authorization mode, transactions, meter
values, DataTransfer messages; on connectors the session going on with its latest energy
and power; on charge points their latest diagnostics and firmware status.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

import dashboard.models.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('id_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=20), nullable=False),
    sa.Column('tag_key', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('expiry', dashboard.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('parent_tag', sa.String(length=20), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('registered', sa.Boolean(), nullable=False),
    sa.Column('last_seen', dashboard.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created', dashboard.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', dashboard.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_id_tags_company_id_companies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_id_tags')),
    sa.UniqueConstraint('company_id', 'tag_key', name='uq_id_tags_company_tag')
    )
    with op.batch_alter_table('id_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_id_tags_company_id'), ['company_id'], unique=False)

    op.create_table('data_transfers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cp_id', sa.Integer(), nullable=False),
    sa.Column('vendor_id', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.String(length=50), nullable=True),
    sa.Column('data', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('received', dashboard.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cp_id'], ['chargepoints.id'], name=op.f('fk_data_transfers_cp_id_chargepoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_transfers'))
    )
    op.create_table('meter_values',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cp_id', sa.Integer(), nullable=False),
    sa.Column('connector_id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=True),
    sa.Column('timestamp', dashboard.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('measurand', sa.String(length=48), nullable=False),
    sa.Column('phase', sa.String(length=8), nullable=True),
    sa.Column('unit', sa.String(length=12), nullable=True),
    sa.Column('context', sa.String(length=24), nullable=True),
    sa.Column('location', sa.String(length=8), nullable=True),
    sa.Column('format', sa.String(length=12), nullable=True),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('normalised', dashboard.models.types.ExactDecimal(precision=12, scale=3), nullable=True),
    sa.Column('received', dashboard.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cp_id'], ['chargepoints.id'], name=op.f('fk_meter_values_cp_id_chargepoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meter_values'))
    )
    with op.batch_alter_table('meter_values', schema=None) as batch_op:
        batch_op.create_index('ix_meter_values_received', ['received'], unique=False)
        batch_op.create_index('ix_meter_values_transaction', ['cp_id', 'transaction_id', 'timestamp'], unique=False)

    op.create_table('transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cp_id', sa.Integer(), nullable=False),
    sa.Column('connector_id', sa.Integer(), nullable=True),
    sa.Column('id_tag', sa.String(length=20), nullable=True),
    sa.Column('id_tag_status', sa.String(length=12), nullable=True),
    sa.Column('meter_start', sa.Integer(), nullable=True),
    sa.Column('start_timestamp', dashboard.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reservation_id', sa.Integer(), nullable=True),
    sa.Column('meter_stop', sa.Integer(), nullable=True),
    sa.Column('stop_timestamp', dashboard.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stop_reason', sa.String(length=20), nullable=True),
    sa.Column('stop_id_tag', sa.String(length=20), nullable=True),
    sa.Column('orphan', sa.Boolean(), nullable=False),
    sa.Column('reported_id', sa.Integer(), nullable=True),
    sa.Column('last_energy_wh', dashboard.models.types.ExactDecimal(precision=12, scale=3), nullable=True),
    sa.Column('last_power_w', dashboard.models.types.ExactDecimal(precision=12, scale=3), nullable=True),
    sa.Column('peak_power_w', dashboard.models.types.ExactDecimal(precision=12, scale=3), nullable=True),
    sa.Column('created', dashboard.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cp_id'], ['chargepoints.id'], name=op.f('fk_transactions_cp_id_chargepoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions')),
    sa.UniqueConstraint('cp_id', 'connector_id', 'id_tag', 'meter_start', 'start_timestamp', name='uq_transactions_start')
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.create_index('ix_transactions_active', ['cp_id', 'stop_timestamp'], unique=False)
        batch_op.create_index('ix_transactions_cp_start', ['cp_id', 'start_timestamp'], unique=False)

    with op.batch_alter_table('chargepoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('diagnostics_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('diagnostics_status_at', dashboard.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('firmware_status', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('firmware_status_at', dashboard.models.types.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('companies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authorization_mode', sa.String(length=8), nullable=False, server_default='open'))

    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transaction_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('energy_wh', dashboard.models.types.ExactDecimal(precision=12, scale=3), nullable=True))
        batch_op.add_column(sa.Column('power_w', dashboard.models.types.ExactDecimal(precision=12, scale=3), nullable=True))
        batch_op.add_column(sa.Column('meter_timestamp', dashboard.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('session_energy_wh', dashboard.models.types.ExactDecimal(precision=12, scale=3), nullable=True))


    # The built-in roles gain the permissions of id tags and transactions.
    roles = sa.table("roles", sa.column("id", sa.Integer), sa.column("name", sa.String),
                     sa.column("permissions", sa.JSON))
    added = {
        "superadmin": ["create.idtag", "read.idtag", "update.idtag", "delete.idtag",
                       "read.transaction"],
        "company_user": ["read.idtag", "read.transaction"],
    }
    connection = op.get_bind()
    for role_id, name, permissions in connection.execute(
        sa.select(roles.c.id, roles.c.name, roles.c.permissions)
    ).all():
        if name in added:
            merged = list(permissions or []) + [p for p in added[name] if p not in (permissions or [])]
            connection.execute(roles.update().where(roles.c.id == role_id).values(permissions=merged))


def downgrade():
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.drop_column('session_energy_wh')
        batch_op.drop_column('meter_timestamp')
        batch_op.drop_column('power_w')
        batch_op.drop_column('energy_wh')
        batch_op.drop_column('transaction_id')

    with op.batch_alter_table('companies', schema=None) as batch_op:
        batch_op.drop_column('authorization_mode')

    with op.batch_alter_table('chargepoints', schema=None) as batch_op:
        batch_op.drop_column('firmware_status_at')
        batch_op.drop_column('firmware_status')
        batch_op.drop_column('diagnostics_status_at')
        batch_op.drop_column('diagnostics_status')

    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_transactions_cp_start')
        batch_op.drop_index('ix_transactions_active')

    op.drop_table('transactions')
    with op.batch_alter_table('meter_values', schema=None) as batch_op:
        batch_op.drop_index('ix_meter_values_transaction')
        batch_op.drop_index('ix_meter_values_received')

    op.drop_table('meter_values')
    op.drop_table('data_transfers')
    with op.batch_alter_table('id_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_id_tags_company_id'))

    op.drop_table('id_tags')
