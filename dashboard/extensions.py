"""Extension objects, created once at import and bound to the app in `create_app()`."""

from functools import lru_cache

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, any_, bindparam, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Named constraints, so that Alembic can alter them on every backend (SQLite included).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
sock = Sock()
csrf = CSRFProtect()
# Rate limits are opt-in per view (the sign-in form); storage: RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address)
# The WebSocket handshakes of charge points and browsers, which no limit applies to.
_UNLIMITED_BLUEPRINTS = frozenset({"ocpp16", "live"})


@limiter.request_filter
def _unlimited() -> bool:
    """Spare the handshakes the limiter's search for limits that apply: 3 % of a worker's
    CPU in a reconnect storm (py-spy)."""
    return request.blueprint in _UNLIMITED_BLUEPRINTS


def of_this_process(name: str, make):
    """The one `make(app)` of this process for the current application (a batcher, a
    scheduler), made the first time it is asked for."""
    app = current_app._get_current_object()
    found = app.extensions.get(name)
    if found is None:
        found = app.extensions.setdefault(name, make(app))
    return found


def reads_only() -> None:
    """Run what the session does next, until it gives its connection back, in autocommit
    mode: a read needs no transaction, and PostgreSQL is spared the BEGIN and the COMMIT or
    ROLLBACK round trips. Call it before the session's first query, and only for reads; a
    session that has its connection already keeps it as it is."""
    if db.session().in_transaction():
        return
    db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def commit() -> None:
    """Commit what the session did, if it did anything: a session with no transaction
    begun and nothing added, changed, deleted or waiting in its `info` (the events and
    history rows of the services) is left as it is. Its commit would begin a transaction
    only to end it, through every listener: an OCPP handler whose message the ingest batch
    stored spent 4 % of a worker so at 1,000 statuses/s (py-spy)."""
    session = db.session()
    if session.in_transaction() or session.info or session.new or session.dirty or session.deleted:
        session.commit()


def try_transaction_lock(key: int) -> bool:
    """Whether this transaction got the lock `key` (PostgreSQL's pg_try_advisory_xact_lock,
    held until the commit or rollback): one process at a time runs what it guards. Always
    True on SQLite, which has one worker."""
    if db.session.get_bind().dialect.name != "postgresql":
        return True
    return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}))


class _BinaryList(list):
    """A list that psycopg sends as a binary array (registered below)."""


@sa_event.listens_for(Engine, "connect")
def _binary_arrays(dbapi_connection, connection_record) -> None:
    """Each psycopg connection dumps a _BinaryList as a binary array. Registered here, on
    the connection, and psycopg imported only now: never when this module is imported.
    gunicorn.conf.py imports the app's package in the master, before gevent patches the
    worker, and psycopg chooses how to wait for the server when it is first imported: then
    a wait that blocks the whole worker (`wait_c`), every greenlet held up by every query
    (the fleet bench's reconnect storm connected 2,000 of 10,000 charge points)."""
    adapters = getattr(dbapi_connection, "adapters", None)  # None: SQLite
    if adapters is not None:
        from psycopg.types.array import ListBinaryDumper

        adapters.register_dumper(_BinaryList, ListBinaryDumper)


class BinaryArray(TypeDecorator):
    """A PostgreSQL array parameter sent in the binary format. The text format, psycopg's
    default for lists, costs 6 µs an element for a datetime and 12 for a JSON document
    (each quoted and escaped by regular expressions), the binary one under half a µs: on
    the ingest path and the webhook log, which send every row as arrays of columns, that
    was ~70 µs of a worker's CPU per message. The values are processed as the element
    type says, as ARRAY does; what the database makes of them is the same."""

    impl = postgresql.ARRAY
    cache_ok = True

    def bind_processor(self, dialect):
        process = super().bind_processor(dialect)

        def to_binary(value):
            if value is None:
                return None
            return _BinaryList(process(value) if process is not None else value)

        return to_binary


def among(column, values):
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one statement text
    whatever the number of values. IN gives each number its own text, and a long one is
    parsed afresh by psycopg each time (it caches texts under 4 kB only): on the ingest
    path, where batches hold hundreds, that parsing cost more than the query."""
    values = list(values)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=BinaryArray(column.type)))
    return column.in_(values)


def upsert_statement(model, keys: list[str], updates: list[str]):
    """An INSERT of `model` that, where a row with the same `keys` exists, sets its
    `updates` columns to the new values instead (ON CONFLICT DO UPDATE)."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in updates}
    )


def insert_ignoring_duplicates(model):
    """An INSERT of `model` that skips a row a unique key already holds (ON CONFLICT DO
    NOTHING, on PostgreSQL and SQLite alike)."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


# --- statements of arrays (PostgreSQL) ------------------------------------------------------
# A multi-row INSERT or an executemany has a text of its own for each number of rows, too
# long for psycopg to keep prepared (it caches texts under 4 kB): on the hot paths (ingest
# batches, webhook delivery logs) parsing them cost more than running them. These take
# every row as one array per column instead: one text whatever the number of rows.


def unnest(table, names: tuple[str, ...]) -> tuple[str, list]:
    """`unnest(...)` of one array parameter per column of `table` in `names` (each CAST to
    its column's base type: a value too long still fails on the column, as it would), and
    the bind parameters that process the values as the columns do."""
    dialect = postgresql.dialect()
    casts = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect).split('(')[0]}[])"
        for name in names
    )
    binds = [bindparam(name, type_=BinaryArray(table.c[name].type)) for name in names]
    return f"unnest({casts})", binds


def _unique_index(table):
    """The one unique index of `table` that an upsert counts against (columns, WHERE)."""
    (index,) = [index for index in table.indexes if index.unique]
    where = index.dialect_options["postgresql"]["where"]
    return [column.name for column in index.columns], where


def _on_conflict(table, ignoring_duplicates: bool, counting_in: str | None) -> str:
    if counting_in is not None:
        columns, where = _unique_index(table)
        return (
            f" ON CONFLICT ({', '.join(columns)}) WHERE {where} DO UPDATE"
            f" SET {counting_in} = {table.name}.{counting_in} + 1"
        )
    return " ON CONFLICT DO NOTHING" if ignoring_duplicates else ""


@lru_cache(maxsize=64)
def _insert_arrays(
    table, names: tuple[str, ...], ignoring_duplicates: bool = False, counting_in: str | None = None
):
    arrays, binds = unnest(table, names)
    columns = ", ".join(names)
    return text(
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {arrays} "
        f"WITH ORDINALITY AS r({columns}, n) ORDER BY n"
        + _on_conflict(table, ignoring_duplicates, counting_in)
    ).bindparams(*binds)


def insert_all(
    table,
    rows: list[dict],
    connection=None,
    ignoring_duplicates: bool = False,
    counting_in: str | None = None,
) -> None:
    """INSERT `rows` (dicts with the same keys) into `table`, in their order (ids follow
    it), on `connection` (the session's by default): on PostgreSQL one statement of
    arrays, elsewhere an executemany. With `ignoring_duplicates`, a row a unique key
    already holds is skipped (ON CONFLICT DO NOTHING); with `counting_in` (a column), a
    row that the table's unique index already holds adds one to that column of the row
    there instead (which also locks it until the transaction ends). No two of `rows` may
    be the same key then."""
    if not rows:
        return
    connection = connection or db.session.connection()
    if connection.dialect.name != "postgresql":
        statement = table.insert()
        if counting_in is not None:
            columns, where = _unique_index(table)
            statement = sqlite.insert(table).on_conflict_do_update(
                index_elements=columns,
                index_where=where,
                set_={counting_in: table.c[counting_in] + 1},
            )
        elif ignoring_duplicates:
            statement = sqlite.insert(table).on_conflict_do_nothing()
        connection.execute(statement, rows)
        return
    names = tuple(rows[0])
    connection.execute(
        _insert_arrays(table, names, ignoring_duplicates, counting_in),
        {n: [row[n] for row in rows] for n in names},
    )
