# python_shim.py
#   The Python half of trek's Python migrations.
#
# trek runs a Python migration as a DO block in language plpython3u.  The
# block loads this module once per session (it is kept in sys.modules under
# a name that changes with its text) and calls run(file, source), which
# compiles the migration under its own file name, gives run_migration() an
# asyncpg-like connection built on plpy, and drives a coroutine to its end
# without an event loop.
#
# Errors leave run() as one TrekMigrationFailure, a plpy.SPIError whose
# spidata carries the SQLSTATE, detail, hint, query and object names of the
# original error, and whose message starts with a header that the C side
# (src/python.c) takes off again:
#
#     "<line> <n>\n" + context (n lines, each ending in "\n") + message
#
# line is the innermost line of the migration file the error passed through
# (0 if none).  The context names the SQL statement that failed (as SPI
# does for SQL steps) and, when the error passed through more than one
# frame of the file, the traceback through the file.

import base64
import builtins
import datetime
import decimal
import importlib.abc
import importlib.machinery
import inspect
import json
import os
import re
import sys
import types
import uuid

import plpy
from plpy import spiexceptions

EXTERNAL_ROUTINE_EXCEPTION = "38000"
INVALID_FUNCTION_DEFINITION = "42P13"
INVALID_TRANSACTION_STATE = "25000"
FEATURE_NOT_SUPPORTED = "0A000"

# type oids (catalog/pg_type.h)
JSON_TYPES = (114, 3802)  # json, jsonb
INTERVAL_TYPE = 1186
DATE_TYPE = 1082
TIME_TYPE = 1083
TIMESTAMP_TYPE = 1114
TIMESTAMPTZ_TYPE = 1184
TIMETZ_TYPE = 1266
UUID_TYPE = 2950
ARRAY_OF = {1182: DATE_TYPE, 1183: TIME_TYPE, 1115: TIMESTAMP_TYPE,
            1185: TIMESTAMPTZ_TYPE, 1270: TIMETZ_TYPE, 2951: UUID_TYPE,
            1187: INTERVAL_TYPE}
CONVERTED = frozenset(ARRAY_OF) | frozenset(ARRAY_OF.values())

# an interval as IntervalStyle postgres writes it: "1 year -2 mons 3 days
# -04:05:06.7"
INTERVAL_RE = re.compile(
    r"^(?:(?P<years>[+-]?\d+) years? ?)?(?:(?P<mons>[+-]?\d+) mons? ?)?"
    r"(?:(?P<days>[+-]?\d+) days? ?)?"
    r"(?:(?P<sign>[+-]?)(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?))?$")

# SPI result codes (executor/spi.h) and the command tags asyncpg returns
# (19, SPI_OK_MERGE_RETURNING, since PostgreSQL 17)
STATUS_TAGS = {5: "SELECT", 6: "SELECT", 7: "INSERT 0", 8: "DELETE",
               9: "UPDATE", 11: "INSERT 0", 12: "DELETE", 13: "UPDATE",
               18: "MERGE", 19: "MERGE"}


def encode_sqlstate(code):
    """The int that PostgreSQL's MAKE_SQLSTATE() makes of a 5-char code."""
    value = 0
    for i, ch in enumerate(code):
        value += ((ord(ch) - ord("0")) & 0x3F) << (6 * i)
    return value


def valid_sqlstate(code):
    return (isinstance(code, str) and len(code) == 5 and
            all(c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" for c in code))


class InterfaceError(Exception):
    """Misuse of the connection (asyncpg has a class of the same name)."""


InterfaceError.__module__ = "trek"


class TrekMigrationFailure(plpy.SPIError):
    """The one exception that leaves run(); see the header comment."""


# PL/Python prefixes messages with the class name only for these modules
TrekMigrationFailure.__module__ = "builtins"


class MigrationError(Exception):
    """An error of trek's own about the migration, with a SQLSTATE."""

    def __init__(self, sqlstate, message, hint=None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.hint = hint


# --------------------------------------------------------------------------
# Records

class Record:
    """A row, readable like asyncpg's Record: r["col"], r[0], keys()."""

    __slots__ = ("_names", "_values")

    def __init__(self, names, values):
        self._names = names
        self._values = values

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return self._values[self._names.index(key)]
            except ValueError:
                raise KeyError(key) from None
        return self._values[key]

    def get(self, key, default=None):
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def keys(self):
        return iter(self._names)

    def values(self):
        return iter(self._values)

    def items(self):
        return zip(self._names, self._values)

    def __len__(self):
        return len(self._values)

    def __iter__(self):
        return iter(self._values)

    def __contains__(self, key):
        return key in self._names

    def __eq__(self, other):
        if isinstance(other, Record):
            return self._values == other._values
        if isinstance(other, tuple):
            return tuple(self._values) == other
        return NotImplemented

    def __hash__(self):
        return hash(tuple(self._values))

    def __repr__(self):
        fields = " ".join("%s=%r" % kv for kv in self.items())
        return "<Record %s>" % fields if fields else "<Record>"


def parse_temporal(oid, text):
    """Date/time output text as a datetime object (ISO DateStyle), or the
    text unchanged if it is in another style or out of Python's range."""
    if not isinstance(text, str):
        return text
    try:
        if oid == DATE_TYPE:
            if text in ("infinity", "-infinity"):
                return datetime.date.max if text[0] == "i" else datetime.date.min
            return datetime.date.fromisoformat(text)
        if oid in (TIMESTAMP_TYPE, TIMESTAMPTZ_TYPE):
            if text in ("infinity", "-infinity"):
                value = (datetime.datetime.max if text[0] == "i"
                         else datetime.datetime.min)
                if oid == TIMESTAMPTZ_TYPE:
                    value = value.replace(tzinfo=datetime.timezone.utc)
                return value
            return datetime.datetime.fromisoformat(text)
        if oid in (TIME_TYPE, TIMETZ_TYPE):
            return datetime.time.fromisoformat(text)
        if oid == UUID_TYPE:
            return uuid.UUID(text)
        if oid == INTERVAL_TYPE:
            return parse_interval(text)
    except (ValueError, OverflowError):
        pass
    return text


def parse_interval(text):
    """An interval as a timedelta, a month counting as 30 days (as asyncpg
    does), or the text unchanged if it is not in IntervalStyle postgres."""
    match = INTERVAL_RE.match(text)
    if match is None or not text:
        return text
    part = match.groupdict()
    months = int(part["years"] or 0) * 12 + int(part["mons"] or 0)
    value = datetime.timedelta(days=months * 30 + int(part["days"] or 0))
    if part["h"] is not None:
        clock = datetime.timedelta(
            hours=int(part["h"]), minutes=int(part["m"]),
            seconds=int(part["s"][:2]),
            microseconds=int((part["s"][3:] + "000000")[:6] or 0))
        value += -clock if part["sign"] == "-" else clock
    return value


def convert_output(oid, value):
    if value is None:
        return None
    elem = ARRAY_OF.get(oid)
    if elem is not None:
        if isinstance(value, list):
            return [convert_output(oid, v) for v in value]
        return parse_temporal(elem, value)
    return parse_temporal(oid, value)


def make_records(result):
    # SELECT, INSERT/DELETE/UPDATE/MERGE ... RETURNING (MERGE's since 17)
    if result.status() not in (5, 6, 11, 12, 13, 18, 19) or \
            result.nrows() == 0:
        return []
    try:
        names = result.colnames()
        oids = result.coltypes()
    except plpy.Error:
        return []
    convert = [i for i, oid in enumerate(oids) if oid in CONVERTED]
    records = []
    for row in result:
        values = [row[name] for name in names]
        for i in convert:
            values[i] = convert_output(oids[i], values[i])
        records.append(Record(names, values))
    return records


def command_status(result):
    tag = STATUS_TAGS.get(result.status())
    if tag is None:
        return ""
    return "%s %d" % (tag, result.nrows())


# --------------------------------------------------------------------------
# Parameters

def interval_text(value):
    return "%d days %d seconds %d microseconds" % (
        value.days, value.seconds, value.microseconds)


def type_of_value(value):
    """A PostgreSQL type name for a Python value, for statements whose
    parameter types the server cannot tell (those PREPARE refuses)."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint" if -2 ** 63 <= value < 2 ** 63 else "numeric"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, decimal.Decimal):
        return "numeric"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytea"
    if isinstance(value, datetime.datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "timetz" if value.tzinfo is not None else "time"
    if isinstance(value, datetime.timedelta):
        return "interval"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, dict):
        return "jsonb"
    if isinstance(value, (list, tuple)):
        stack = list(value)
        while stack:
            item = stack.pop(0)
            if isinstance(item, (list, tuple)):
                stack[0:0] = list(item)
            elif item is not None:
                return type_of_value(item) + "[]"
        return "text[]"
    return "text"


def kind_of_type(base, elem):
    """How trek converts a value for a parameter of this type: "json",
    "interval", the same followed by "[]" for arrays of them, or None."""
    for oid, suffix in ((base, ""), (elem, "[]")):
        if oid in JSON_TYPES:
            return "json" + suffix
        if oid == INTERVAL_TYPE:
            return "interval" + suffix
    return None


def convert_scalar(kind, value):
    if value is None:
        return None
    if kind == "json":
        if isinstance(value, (str, bytes)):
            return value
        return json.dumps(value)
    if kind == "interval" and isinstance(value, datetime.timedelta):
        return interval_text(value)
    return value


def convert_param(kind, value):
    if value is None or kind is None:
        if isinstance(value, tuple):
            return list(value)
        return value
    if kind.endswith("[]"):
        if isinstance(value, (list, tuple)):
            return [convert_scalar(kind[:-2], v) for v in value]
        return value
    return convert_scalar(kind, value)


# --------------------------------------------------------------------------
# Running SQL

_TYPES_PLAN = None
_prepare_counter = 0


class _Inferred(Exception):
    def __init__(self, rows):
        super().__init__()
        self.rows = rows


def infer_param_types(query):
    """The parameter types the server infers for query, as PREPARE does,
    or None if PREPARE refuses the statement.  Runs in a subtransaction
    that is always rolled back, so nothing the text might contain besides
    the one statement takes effect."""
    global _TYPES_PLAN, _prepare_counter

    if _TYPES_PLAN is None:
        _TYPES_PLAN = plpy.prepare(
            "SELECT pg_catalog.format_type(p.t, NULL) AS name,"
            " b.oid AS base,"
            " CASE WHEN b.typcategory OPERATOR(pg_catalog.=) 'A'"
            " THEN b.typelem ELSE 0 END AS elem"
            " FROM pg_catalog.pg_prepared_statements s,"
            " pg_catalog.unnest(s.parameter_types) WITH ORDINALITY AS p(t, n),"
            " pg_catalog.pg_type ty, pg_catalog.pg_type b"
            " WHERE s.name OPERATOR(pg_catalog.=) $1"
            " AND ty.oid OPERATOR(pg_catalog.=) p.t"
            " AND b.oid OPERATOR(pg_catalog.=) CASE WHEN ty.typtype"
            " OPERATOR(pg_catalog.=) 'd' THEN ty.typbasetype ELSE ty.oid END"
            " ORDER BY p.n", ["text"])
    _prepare_counter += 1
    name = "trek_python_%d_%d" % (os.getpid(), _prepare_counter)
    try:
        with plpy.subtransaction():
            plpy.execute("PREPARE %s AS %s" % (name, query))
            rows = plpy.execute(_TYPES_PLAN, [name])
            plpy.execute("DEALLOCATE %s" % name)
            raise _Inferred([(r["name"], r["base"], r["elem"]) for r in rows])
    except _Inferred as inferred:
        return inferred.rows
    except plpy.SPIError:
        # prepared statements outlive a rollback: a statement after the
        # one prepared may have failed, so make sure the name is gone
        try:
            plpy.execute("DEALLOCATE %s" % name)
        except plpy.SPIError:
            pass
        return None


class Statement:
    """A query prepared through plpy with the conversions its parameters
    need."""

    def __init__(self, query, args):
        types = infer_param_types(query)
        self.value_types = None
        if types is None:
            names = [type_of_value(a) for a in args]
            self.value_types = names
            self.kinds = [{"jsonb": "json", "interval": "interval",
                           "jsonb[]": "json[]",
                           "interval[]": "interval[]"}.get(n) for n in names]
        else:
            names = [t[0] for t in types]
            self.kinds = [kind_of_type(t[1], t[2]) for t in types]
        self.nparams = len(names)
        self.plan = plpy.prepare(query, names)

    def run(self, args):
        if len(args) != self.nparams:
            raise InterfaceError(
                "the server expects %d argument%s for this query, %d %s passed"
                % (self.nparams, "" if self.nparams == 1 else "s",
                   len(args), "was" if len(args) == 1 else "were"))
        return plpy.execute(self.plan, [convert_param(k, a)
                                        for k, a in zip(self.kinds, args)])


# combined exception classes, by (spiexception class, asyncpg class)
_combined = {}
_real_asyncpg = []


def real_asyncpg():
    """The asyncpg package if it is installed (not trek's stand-in)."""
    if not _real_asyncpg:
        try:
            import asyncpg
            mod = asyncpg if not getattr(asyncpg, "_trek_stub", False) else None
            if mod is not None and not hasattr(mod, "PostgresError"):
                mod = None
        except Exception:
            mod = None
        _real_asyncpg.append(mod)
    return _real_asyncpg[0]


def error_attributes(exc, message, spidata, sqlstate):
    """The attributes asyncpg's PostgresError carries, from plpy's spidata."""
    detail, hint, query, position = spidata[1:5]
    return {
        "sqlstate": sqlstate, "severity": "ERROR", "message": message,
        "detail": detail, "hint": hint, "internal_query": query,
        "internal_position": str(position) if position else None,
        "schema_name": spidata[5], "table_name": spidata[6],
        "column_name": spidata[7], "data_type_name": spidata[8],
        "constraint_name": spidata[9], "query": None}


def translate(exc):
    """An SQL error from plpy, as an exception that is both the plpy class
    (spiexceptions.UniqueViolation) and, when asyncpg is installed, the
    asyncpg class (asyncpg.UniqueViolationError).  Without asyncpg, the
    plpy exception itself gets asyncpg's attributes (constraint_name, ...)
    and as_dict(), so that the stand-in reads the same."""
    spidata = getattr(exc, "spidata", None)
    sqlstate = getattr(exc, "sqlstate", None)
    if spidata is None or not valid_sqlstate(sqlstate):
        return exc
    message = exc.args[0] if exc.args else ""
    try:
        attrs = error_attributes(exc, message, spidata, sqlstate)
    except Exception:
        return exc
    asyncpg = real_asyncpg()
    if asyncpg is None:
        try:
            exc.__dict__.update(attrs)
            exc.as_dict = lambda: {k: v for k, v in attrs.items()
                                   if v is not None}
        except Exception:
            pass
        return exc
    try:
        apg_cls = type(asyncpg.PostgresError).get_message_class_for_sqlstate(
            sqlstate)
        key = (type(exc), apg_cls)
        cls = _combined.get(key)
        if cls is None:
            cls = type(apg_cls.__name__, (apg_cls, type(exc)),
                       {"__module__": "trek"})
            _combined[key] = cls
        new = cls(message)
        new.__dict__.update(attrs)
        new.__dict__["spidata"] = spidata
        return new
    except Exception:
        return exc


class Session:
    """What one run of a migration shares: prepared statements and the
    savepoints conn.transaction() holds open."""

    def __init__(self):
        self.statements = {}
        self.open = []

    def run(self, query, args):
        if not isinstance(query, str):
            raise TypeError("query must be a str, not %s" % type(query).__name__)
        try:
            if not args:
                return plpy.execute(query)
            stmt = self.statements.get(query)
            if stmt is not None and stmt.value_types is not None and \
                    stmt.value_types != [type_of_value(a) for a in args]:
                stmt = None
            if stmt is None:
                stmt = Statement(query, args)
                self.statements[query] = stmt
            return stmt.run(args)
        except plpy.SPIError as exc:
            exc.trek_query = query
            if getattr(exc, "spidata", None) is None and exc.args and \
                    "SPI_ERROR_TRANSACTION" in str(exc.args[0]):
                raise MigrationError(
                    "25001",
                    "transaction control statements are not allowed in "
                    "migrations",
                    "Use conn.transaction() for a savepoint: trek runs the "
                    "whole plan in one transaction.") from None
            new = translate(exc)
            if new is exc:
                raise
            new.trek_query = query
            raise new from exc

    def close_all(self):
        """Roll back what conn.transaction() left open (on error)."""
        while self.open:
            self.open[-1].rollback_quietly()


class Transaction:
    """conn.transaction(): a savepoint (plpy.subtransaction), as a context
    manager (with and async with) or through start/commit/rollback."""

    def __init__(self, session, isolation=None, readonly=False,
                 deferrable=False):
        if isolation is not None or readonly or deferrable:
            raise InterfaceError(
                "cannot set isolation, readonly or deferrable: a migration "
                "runs inside trek's transaction, so conn.transaction() is a "
                "savepoint")
        self._session = session
        self._sub = None
        self._state = "new"

    def start(self):
        if self._state != "new":
            raise InterfaceError("cannot start a transaction that is %s"
                                 % self._state)
        self._sub = plpy.subtransaction()
        self._sub.__enter__()
        self._session.open.append(self)
        self._state = "started"
        return Done(None)

    def _finish(self, commit, verb):
        if self._state != "started":
            raise InterfaceError("cannot %s a transaction that is %s"
                                 % (verb, "not started" if self._state == "new"
                                    else self._state))
        if self._session.open[-1] is not self:
            raise InterfaceError("cannot %s a transaction while a "
                                 "transaction started inside it is open"
                                 % verb)
        self._session.open.pop()
        self._state = "committed" if commit else "rolled back"
        if commit:
            self._sub.__exit__(None, None, None)
        else:
            self._sub.__exit__(InterfaceError, InterfaceError("rollback"),
                               None)
        return Done(None)

    def commit(self):
        return self._finish(True, "commit")

    def rollback(self):
        return self._finish(False, "roll back")

    def rollback_quietly(self):
        self._session.open.remove(self)
        self._state = "rolled back"
        self._sub.__exit__(InterfaceError, InterfaceError("rollback"), None)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._state == "started":
            if exc_type is None:
                self.commit()
            else:
                self.rollback()
        return False

    async def __aenter__(self):
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb):
        return self.__exit__(exc_type, exc, tb)


class Done:
    """An awaitable that is already done (for calls that act at once)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __await__(self):
        return self.value
        yield  # a generator that returns at once


class Connection:
    """The connection a plain def run_migration(conn) gets: asyncpg's
    methods, returning their results directly."""

    def __init__(self, session):
        self._session = session

    def execute(self, query, *args, timeout=None):
        return command_status(self._session.run(query, args))

    def executemany(self, command, args, *, timeout=None):
        for row in args:
            self._session.run(command, tuple(row))

    def fetch(self, query, *args, timeout=None, record_class=None):
        return make_records(self._session.run(query, args))

    def fetchrow(self, query, *args, timeout=None, record_class=None):
        records = make_records(self._session.run(query, args))
        return records[0] if records else None

    def fetchval(self, query, *args, column=0, timeout=None):
        records = make_records(self._session.run(query, args))
        return records[0][column] if records else None

    def transaction(self, *, isolation=None, readonly=False,
                    deferrable=False):
        return Transaction(self._session, isolation, readonly, deferrable)

    def is_in_transaction(self):
        return True

    def get_server_version(self):
        num = int(plpy.execute("SELECT pg_catalog.current_setting("
                               "'server_version_num') AS v")[0]["v"])
        return (num // 10000, num % 10000 // 100 if num < 100000 else 0,
                num % 100, "final", 0)


class AsyncConnection:
    """The connection an async def run_migration(conn) gets: the same
    methods, to be awaited."""

    def __init__(self, session):
        self._conn = Connection(session)

    async def execute(self, query, *args, timeout=None):
        return self._conn.execute(query, *args)

    async def executemany(self, command, args, *, timeout=None):
        return self._conn.executemany(command, args)

    async def fetch(self, query, *args, timeout=None, record_class=None):
        return self._conn.fetch(query, *args)

    async def fetchrow(self, query, *args, timeout=None, record_class=None):
        return self._conn.fetchrow(query, *args)

    async def fetchval(self, query, *args, column=0, timeout=None):
        return self._conn.fetchval(query, *args, column=column)

    def transaction(self, *, isolation=None, readonly=False,
                    deferrable=False):
        return self._conn.transaction(isolation=isolation, readonly=readonly,
                                      deferrable=deferrable)

    def is_in_transaction(self):
        return True

    def get_server_version(self):
        return self._conn.get_server_version()


def drive(awaitable):
    """Run a coroutine to its end without an event loop: trek's own
    awaitables never suspend, so anything that does is refused."""
    if inspect.iscoroutine(awaitable):
        coro = awaitable
    else:
        coro = awaitable.__await__()
    pending = None
    while True:
        try:
            if pending is None:
                yielded = coro.send(None)
            else:
                yielded = coro.throw(pending)
                pending = None
        except StopIteration as stop:
            return stop.value
        if yielded is not None:
            # raised where the migration awaited it, so the line is right
            pending = MigrationError(
                FEATURE_NOT_SUPPORTED,
                "a migration can only await the methods of conn",
                "trek runs run_migration() without an event loop, so it "
                "cannot wait for %r." % (yielded,))


# --------------------------------------------------------------------------
# "import asyncpg" without asyncpg installed

def stub_getattr(name):
    """asyncpg.UniqueViolationError and the like, as the spiexceptions
    class of the same condition (spiexceptions.UniqueViolation)."""
    if name.endswith("Error"):
        cls = getattr(spiexceptions, name[:-5], None)
        if cls is None and name.startswith("Postgres"):
            cls = getattr(spiexceptions, name[8:-5], None)
        if cls is not None:
            return cls
    raise AttributeError("module 'asyncpg' (trek's stand-in) has no "
                         "attribute %r" % name)


def make_stub(name):
    mod = types.ModuleType(name)
    mod._trek_stub = True
    mod.__getattr__ = stub_getattr
    mod.PostgresError = plpy.SPIError
    mod.InterfaceError = InterfaceError
    mod.Connection = AsyncConnection
    mod.Record = Record
    if name == "asyncpg":
        mod.__path__ = []
    return mod


class StubLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return make_stub(spec.name)

    def exec_module(self, module):
        if module.__name__ == "asyncpg.exceptions":
            sys.modules["asyncpg"].exceptions = module


class StubFinder(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path while a migration runs: serves asyncpg when
    the real package is not installed."""

    def find_spec(self, fullname, path, target=None):
        if fullname in ("asyncpg", "asyncpg.exceptions"):
            return importlib.machinery.ModuleSpec(fullname, StubLoader())
        return None


# --------------------------------------------------------------------------
# Errors

def error_fields(exc):
    """(message, spidata) of an exception that carries a SQLSTATE: an SQL
    error from plpy (kept whole), plpy.error(), trek's own errors, asyncpg's
    PostgresError; None for other exceptions."""
    spidata = getattr(exc, "spidata", None)
    message = str(exc.args[0]) if exc.args else ""
    if isinstance(exc, plpy.SPIError) and isinstance(spidata, tuple) and \
            len(spidata) == 10:
        return message, spidata
    sqlstate = getattr(exc, "sqlstate", None)
    if not valid_sqlstate(sqlstate) or not (
            isinstance(exc, (plpy.SPIError, plpy.Error, MigrationError)) or
            hasattr(exc, "as_dict")):
        return None

    def field(*names):
        for name in names:
            value = getattr(exc, name, None)
            if value is not None:
                return str(value)
        return None

    return message, (encode_sqlstate(sqlstate), field("detail"),
                     field("hint"), None, 0, field("schema_name"),
                     field("table_name"), field("column_name"),
                     field("datatype_name", "data_type_name"),
                     field("constraint_name"))


def python_message(exc, filename):
    """"Type: text", as Python and PL/Python print an exception."""
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__", frame_module_name(filename)):
        name = cls.__qualname__
    else:
        name = "%s.%s" % (module, cls.__qualname__)
    return "%s: %s" % (name, text) if text else name


def failure(exc, filename, source_lines):
    """TrekMigrationFailure for any exception that ends a migration."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == filename:
            frames.append((tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    line = frames[-1][0] if frames else 0
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno or 0

    fields = error_fields(exc)
    if fields is None:
        fields = (python_message(exc, filename),
                  (encode_sqlstate(EXTERNAL_ROUTINE_EXCEPTION), None, None,
                   None, 0, None, None, None, None, None))
    message, spidata = fields

    context = []
    query = getattr(exc, "trek_query", None)
    if isinstance(query, str) and spidata[3] is None:
        context.append('SQL statement "%s"' % query.strip())
    if len(frames) > 1:
        context.append("Traceback (most recent call last):")
        for lineno, name in frames:
            context.append('  File "%s", line %d, in %s'
                           % (filename, lineno, name))
            if 0 < lineno <= len(source_lines):
                text = source_lines[lineno - 1].strip()
                if text:
                    context.append("    " + text)
    context = "".join(c + "\n" for c in context)

    new = TrekMigrationFailure("%d %d\n" % (line, context.count("\n")) +
                               context + message)
    new.spidata = spidata
    return new


def frame_module_name(filename):
    return filename.rsplit(".", 1)[0]


# --------------------------------------------------------------------------
# Entry point

# PEP 263: a coding declaration on line 1 or 2
CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+", re.M)


def check_source(source, filename):
    """Refuse what compile() words differently from one Python to the next:
    NUL bytes, and bytes that are not UTF-8 without a coding declaration."""
    if b"\0" in source:
        # what compile() says since Python 3.12 (before: ValueError)
        raise SyntaxError("source code string cannot contain null bytes")
    if CODING_RE.search(b"\n".join(source.split(b"\n", 2)[:2])):
        return
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        # worded as compile() did until Python 3.13, with the position in
        # the line
        start = source.rfind(b"\n", 0, exc.start) + 1
        end = source.find(b"\n", exc.start)
        line = source[start:] if end < 0 else source[start:end + 1]
        try:
            line.decode("utf-8")
            reason = exc
        except UnicodeDecodeError as in_line:
            reason = in_line
        err = SyntaxError("(unicode error) %s" % reason)
        err.filename = filename
        err.lineno = source.count(b"\n", 0, exc.start) + 1
        raise err from None


_idle_loop = []


def set_idle_loop():
    """Since Python 3.14, asyncio.Future() and asyncio.get_event_loop()
    fail where no event loop is set, where they made one before.  A
    migration that imported asyncio gets a loop that never runs, so that
    awaiting a future is trek's own error on every Python.  Returns the
    asyncio module if it set the loop."""
    asyncio = sys.modules.get("asyncio")
    if sys.version_info < (3, 14) or asyncio is None:
        return None
    if not _idle_loop:
        _idle_loop.append(asyncio.new_event_loop())
    asyncio.set_event_loop(_idle_loop[0])
    return asyncio


def run(filename_b64, source_b64):
    filename = base64.b64decode(filename_b64).decode("ascii")
    source = base64.b64decode(source_b64)
    session = Session()
    finder = StubFinder()
    sys.meta_path.append(finder)
    source_lines = []
    loop_owner = None
    try:
        try:
            source_lines = source.decode("utf-8", "replace").splitlines()
            check_source(source, filename)
            code = compile(source, filename, "exec", dont_inherit=True)
            namespace = {"__name__": frame_module_name(filename),
                         "__file__": filename, "__builtins__": builtins}
            exec(code, namespace)
            func = namespace.get("run_migration")
            loop_owner = set_idle_loop()
            if not callable(func):
                raise MigrationError(
                    INVALID_FUNCTION_DEFINITION,
                    "migration defines no function run_migration(conn)",
                    "Define \"async def run_migration(conn)\" or "
                    "\"def run_migration(conn)\".")
            if inspect.iscoroutinefunction(func):
                result = func(AsyncConnection(session))
            else:
                result = func(Connection(session))
            if inspect.isawaitable(result):
                drive(result)
            elif inspect.isgenerator(result) or inspect.isasyncgen(result):
                raise MigrationError(
                    INVALID_FUNCTION_DEFINITION,
                    "run_migration(conn) is a generator, so it would not run",
                    "Define it with \"async def\" or \"def\", without "
                    "\"yield\".")
            if session.open:
                raise MigrationError(
                    INVALID_TRANSACTION_STATE,
                    "run_migration() returned with a transaction from "
                    "conn.transaction() still open",
                    "Commit or roll back every transaction it starts, or "
                    "use \"async with conn.transaction():\".")
        except BaseException as exc:
            session.close_all()
            raise failure(exc, filename, source_lines) from None
    finally:
        if loop_owner is not None:
            loop_owner.set_event_loop(None)
        sys.meta_path.remove(finder)
        for name in ("asyncpg.exceptions", "asyncpg"):
            if getattr(sys.modules.get(name), "_trek_stub", False):
                del sys.modules[name]
