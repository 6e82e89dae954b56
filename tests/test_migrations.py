"""Migrating an empty database gives exactly the schema the models declare."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.extensions import db


@pytest.fixture
def empty_url(backend, tmp_path, request):
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"migrated_{tmp_path.name[-12:].replace('-', '_').lower()}")


def test_migrations_give_the_declared_schema(empty_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": empty_url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert differences == []
