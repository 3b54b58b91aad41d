#!/usr/bin/env python3
"""compare.py TOOL FOLDER: replay a real migration history of another tool
two ways and compare the schemas.

  A  every up migration applied the way TOOL itself applies it, emulated
     with psycopg 3 (simple-query protocol through libpq's PQexec, the
     transactions, sections and markers of TOOL);
  B  the same folder applied by trek: CALL trek_migrate('FOLDER', 'head');
  C  the folder sent as jsonb: CALL trek_migrate($1::jsonb, 'head').

Then pg_dump --schema-only --no-owner of A, B and C are compared (trek's own
schema and the extension left out, blocks sorted), B is migrated down to
'initial' (or as far down as trek goes), up to head again, and compared
again.  TOOL: golang-migrate, sqlx, dbmate, goose, flyway, diesel.

With --adopt, a fourth database D is built the tool's way together with the
tool's state table, its rows as the tool writes them; then trek_adopt()
must return the last version applied, trek_migrate() to the same target
must run nothing, trek_verify() must pass, and the schema must not change
(for the folder on the server and for the folder sent as jsonb).

Needs a superuser connection (PG* environment variables or --dsn), the
server on the same machine (FOLDER is read by the server) and pg_dump on
PATH.  See README.md.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zlib

import psycopg
from psycopg import pq, sql
from psycopg.types.json import Jsonb

TOOLS = ("golang-migrate", "sqlx", "dbmate", "goose", "flyway", "diesel")


class MigrationError(Exception):
    pass


# ---------------------------------------------------------------- running


def run_simple(conn, text, what):
    """One simple-protocol Query (PQexec), as lib/pq, pgx and diesel send a
    query without parameters."""
    if text.strip() == "" and what != "force":
        return
    res = conn.pgconn.exec_(text.encode())
    if res.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK,
                          pq.ExecStatus.EMPTY_QUERY):
        msg = res.error_message.decode(errors="replace").strip()
        # leave no failed transaction block behind
        if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            conn.pgconn.exec_(b"ROLLBACK")
        raise MigrationError("%s: %s" % (what, msg))


def in_transaction(conn, texts, what):
    run_simple(conn, "BEGIN", what)
    for t in texts:
        run_simple(conn, t, what)
    run_simple(conn, "COMMIT", what)


# ------------------------------------------------------ the tools' folders


class Migration:
    def __init__(self, version, key, up, down=None, label=None):
        self.version = version      # as the tool writes it
        self.key = key              # sort key
        self.up = up                # relative path of the up file (or None)
        self.down = down
        self.label = label or up


def listdir_files(folder):
    return sorted(n for n in os.listdir(folder)
                  if os.path.isfile(os.path.join(folder, n)))


def read(folder, rel):
    with open(os.path.join(folder, rel), encoding="utf-8", newline="") as f:
        return f.read()


def golang_migrations(folder):
    vs = {}
    for n in listdir_files(folder):
        m = re.match(r"^([0-9]+)_(.*)\.(down|up)\.(.*)$", n)
        if not m:
            continue
        v = int(m.group(1))
        e = vs.setdefault(v, [None, None])
        e[0 if m.group(3) == "up" else 1] = n
    return [Migration(str(v), v, e[0], e[1], e[0] or e[1])
            for v, e in sorted(vs.items())]


def golang_apply(conn, folder, mig):
    if mig.up is None:
        return
    run_simple(conn, read(folder, mig.up), mig.up)


def sqlx_migrations(folder):
    vs = {}
    for n in listdir_files(folder):
        if "_" not in n:
            continue
        pre, rest = n.split("_", 1)
        if not rest.endswith(".sql"):
            continue
        v = int(pre)
        e = vs.setdefault(v, [None, None])
        if rest.endswith(".down.sql"):
            e[1] = n
        else:
            e[0] = n
    return [Migration(str(v), v, e[0], e[1], e[0] or e[1])
            for v, e in sorted(vs.items())]


def sqlx_apply(conn, folder, mig):
    if mig.up is None:
        return
    text = read(folder, mig.up)
    if text.startswith("-- no-transaction"):
        run_simple(conn, text, mig.up)
    else:
        in_transaction(conn, [text], mig.up)


def dbmate_migrations(folder):
    files = [n for n in listdir_files(folder) if re.match(r"^(\d+).*\.sql$", n)]
    return [Migration(re.match(r"^\d+", n).group(0), n, n, n) for n in sorted(files, key=lambda s: s.encode())]


DBMATE_UP = re.compile(r"(?m)^--\s*migrate:up(\s*$|\s+\S+)")
DBMATE_DOWN = re.compile(r"(?m)^--\s*migrate:down(\s*$|\s+\S+)")


def dbmate_sections(text):
    ups = [m.start() for m in DBMATE_UP.finditer(text)]
    if not ups:
        raise MigrationError("no -- migrate:up")
    out = []
    for i, s in enumerate(ups):
        e = ups[i + 1] if i + 1 < len(ups) else len(text)
        sec = text[s:e]
        d = DBMATE_DOWN.search(sec)
        if not d:
            raise MigrationError("no -- migrate:down")
        up = sec[:d.start()]
        first = up.split("\n", 1)[0]
        opts = re.sub(r"^--\s*migrate:up", "", first).split()
        tx = dict(o.split(":", 1) for o in opts if o.count(":") == 1).get("transaction") != "false"
        out.append((up, tx))
    return out


def dbmate_apply(conn, folder, mig):
    secs = dbmate_sections(read(folder, mig.up))
    if len(secs) > 1:
        NOTES.append("dbmate: %s has %d up sections; real dbmate 2.35 fails on "
                     "the second (duplicate version row, dbmate issue #820); "
                     "emulated as each section in turn" % (mig.up, len(secs)))
    for up, tx in secs:
        if tx:
            in_transaction(conn, [up], mig.up)
        else:
            run_simple(conn, up, mig.up)


def goose_migrations(folder):
    vs = {}
    for n in listdir_files(folder):
        base, ext = os.path.splitext(n)
        if ext not in (".sql", ".go") or n.endswith("_test.go"):
            continue
        if "_" not in base:
            continue
        v = int(base.split("_", 1)[0])
        vs[v] = n
    return [Migration(str(v), v, n, n) for v, n in sorted(vs.items())]


def goose_ends_with_semicolon(line):
    prev = ""
    for w in line.split():
        if w.startswith("--"):
            break
        prev = w
    return prev.endswith(";")


def goose_parse(text, direction="up"):
    """(statements of the direction, use a transaction), as goose's
    internal/sqlparser does."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    stmts, buf, state, use_tx = [], [], "start", True
    for raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        if state == "start" and line.strip() == "":
            continue
        if line.strip().startswith("--") and "+goose" in line:
            cmd = line.replace("--", "").replace("+goose", "", 1).strip().lower()
            if cmd == "up":
                state = "up"
            elif cmd == "down":
                state = "down"
            elif cmd == "statementbegin":
                state = "begin_" + state.replace("end_", "").replace("begin_", "")
            elif cmd == "statementend":
                if state.endswith(direction):
                    s = "".join(buf).strip()
                    stmts.append(s)
                buf = []
                state = "end_" + state.replace("begin_", "")
            elif cmd == "no transaction":
                use_tx = False
            continue
        if not buf and (line.strip().startswith("--") or line == ""):
            continue
        if state == "start":
            raise MigrationError("goose: statement before -- +goose Up: %r" % line)
        if not state.endswith(direction):
            buf = []
            continue
        buf.append(line + "\n")
        if not state.startswith("begin_") and goose_ends_with_semicolon(line):
            stmts.append("".join(buf).strip())
            buf = []
    if buf and "".join(buf).strip():
        raise MigrationError("goose: unfinished statement %r" % "".join(buf)[:80])
    return stmts, use_tx


def goose_apply(conn, folder, mig):
    if mig.up.endswith(".go"):
        raise MigrationError("%s: failed to run Go migration: Go functions must be "
                             "registered and built into a custom binary (goose)" % mig.up)
    stmts, tx = goose_parse(read(folder, mig.up))
    if tx:
        in_transaction(conn, stmts, mig.up)
    else:
        for s in stmts:
            run_simple(conn, s, mig.up)


def flyway_version(v):
    parts = [int(p) for p in re.split(r"\.(?=\d)", v.replace("_", "."))]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def flyway_files(folder):
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for n in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, n), folder))
    return sorted(out)


def flyway_migrations(folder):
    vs, rs = [], []
    for rel in flyway_files(folder):
        n = os.path.basename(rel)
        if not n.upper().endswith(".SQL") or len(n) <= 5:
            continue
        stem = n[:-4]
        if stem.startswith("V"):
            left, _, desc = stem[1:].partition("__")
            try:
                key = flyway_version(left)
            except ValueError:
                continue
            undo = os.path.join(os.path.dirname(rel), "U" + n[1:])
            vs.append(Migration(left.replace("_", "."), key, rel,
                                undo if os.path.exists(os.path.join(folder, undo)) else None))
        elif stem.startswith("R__"):
            rs.append(Migration(None, stem[3:].replace("_", " "), rel))
    vs.sort(key=lambda m: m.key)
    rs.sort(key=lambda m: m.key.encode("utf-16-be"))
    return vs, rs


def flyway_split(text):
    """Statements of a script, split on ';' outside strings, quoted names,
    comments and dollar-quoted bodies (Flyway's parser, roughly)."""
    stmts, i, start, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "'":
            esc = i > 0 and text[i - 1] in "eE"
            i += 1
            while i < n:
                if esc and text[i] == "\\":
                    i += 2
                    continue
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif c == '"':
            j = text.find('"', i + 1)
            i = n if j < 0 else j + 1
        elif c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if m and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
            else:
                i += 1
        elif c == ";":
            stmts.append(text[start:i + 1])
            start = i = i + 1
        else:
            i += 1
    rest = text[start:]
    if re.sub(r"--[^\n]*|/\*.*?\*/|\s", "", rest, flags=re.S):
        stmts.append(rest)
    return [s for s in stmts if re.sub(r"--[^\n]*|/\*.*?\*/|\s", "", s, flags=re.S) not in ("", ";")]


FLYWAY_NONTX = [re.compile(p) for p in (
    r"^(CREATE|DROP) (DATABASE|TABLESPACE|SUBSCRIPTION)", r"^ALTER SYSTEM",
    r"^(CREATE|DROP)( UNIQUE)? INDEX CONCURRENTLY",
    r"^REINDEX( VERBOSE)? (SCHEMA|DATABASE|SYSTEM)", r"^VACUUM", r"^DISCARD ALL")]


def flyway_nontransactional(stmt):
    body = re.sub(r"--[^\n]*|/\*.*?\*/", " ", stmt, flags=re.S)
    body = re.sub(r"\([^()]*\)", " ", body)
    words = []
    for w in body.split():
        if re.fullmatch(r"[A-Za-z_]+", w):
            words.append(w.upper())
            s = " ".join(words)
            if any(p.fullmatch(s) for p in FLYWAY_NONTX):
                return True
            if len(words) > 10:
                return False
    return False


def flyway_apply(conn, folder, mig):
    text = read(folder, mig.up)
    stmts = flyway_split(text)
    conf = os.path.join(folder, mig.up + ".conf")
    tx = not any(flyway_nontransactional(s) for s in stmts)
    if os.path.exists(conf):
        for line in open(conf, encoding="utf-8"):
            m = re.match(r"\s*executeInTransaction\s*=\s*(\S+)", line)
            if m:
                tx = m.group(1).lower() == "true"
    if tx:
        in_transaction(conn, stmts, mig.up)
    else:
        for s in stmts:
            run_simple(conn, s, mig.up)


def diesel_migrations(folder):
    out = []
    for n in sorted(os.listdir(folder)):
        p = os.path.join(folder, n)
        if not os.path.isdir(p) or n.startswith(".") or not os.listdir(p):
            continue
        v = n.split("_", 1)[0].replace("-", "")
        down = n + "/down.sql" if os.path.exists(os.path.join(p, "down.sql")) else None
        out.append(Migration(v, v, n + "/up.sql", down, n))
    out.sort(key=lambda m: m.key.encode())
    return out


def diesel_apply(conn, folder, mig):
    d = os.path.dirname(mig.up)
    tx = True
    meta = os.path.join(folder, d, "metadata.toml")
    if os.path.exists(meta):
        try:
            tx = bool(tomllib.load(open(meta, "rb")).get("run_in_transaction", False))
        except (tomllib.TOMLDecodeError, OSError):
            tx = True
    text = read(folder, mig.up)
    if text == "":
        raise MigrationError("%s: Attempted to run an empty migration." % mig.up)
    if tx:
        in_transaction(conn, [text], mig.up)
    else:
        run_simple(conn, text, mig.up)


def migrations_of(tool, folder):
    """([Migration], [repeatable Migration])"""
    if tool == "flyway":
        return flyway_migrations(folder)
    return {"golang-migrate": golang_migrations, "sqlx": sqlx_migrations,
            "dbmate": dbmate_migrations, "goose": goose_migrations,
            "diesel": diesel_migrations}[tool](folder), []


APPLY = {"golang-migrate": golang_apply, "sqlx": sqlx_apply, "dbmate": dbmate_apply,
         "goose": goose_apply, "flyway": flyway_apply, "diesel": diesel_apply}


def sent_folder(tool, folder):
    """The jsonb object of a sent folder: relative names to text."""
    files = {}
    if tool == "diesel":
        for n in sorted(os.listdir(folder)):
            p = os.path.join(folder, n)
            if os.path.isdir(p):
                for f in sorted(os.listdir(p)):
                    if os.path.isfile(os.path.join(p, f)):
                        files[n + "/" + f] = read(folder, n + "/" + f)
            elif os.path.isfile(p):
                files[n] = read(folder, n)
    else:
        for n in listdir_files(folder):
            files[n] = read(folder, n)
    return files


# ------------------------------------------------------------------ dumps


def dump(args, db):
    """pg_dump --schema-only --no-owner of db, as a Counter of its entries
    (header "Name: ...; Type: ...; Schema: ...", body), trek's left out."""
    cmd = ["pg_dump", "--schema-only", "--no-owner", "--exclude-schema=trek", "-d", db]
    out = subprocess.run(cmd, capture_output=True, text=True, env=pg_env(args))
    if out.returncode:
        raise RuntimeError("pg_dump %s: %s" % (db, out.stderr))
    entries, head, body = [], None, []

    def flush():
        if head is not None:
            entries.append((head, "\n".join(body).strip()))

    for line in out.stdout.split("\n"):
        m = re.match(r"^-- (?:Name|Data for Name): (.*?)(?:; Owner: .*)?$", line)
        if m:
            flush()
            head, body = m.group(1), []
            continue
        if line.startswith("--") or line.startswith("\\restrict") or line.startswith("\\unrestrict"):
            continue
        if line.startswith("SET ") or line.startswith("SELECT pg_catalog.set_config('search_path'"):
            continue
        if head is not None:
            body.append(line)
    flush()
    entries = [e for e in entries if not re.search(r"^(EXTENSION )?trek; Type: (EXTENSION|COMMENT)", e[0])]
    return collections.Counter(entries)


def compare(a, b, name_a, name_b, limit=10):
    """(equal, lines describing the differences)"""
    only_a, only_b = a - b, b - a
    heads_a = {h: t for h, t in only_a}
    heads_b = {h: t for h, t in only_b}
    lines = []
    for h in sorted(set(heads_a) | set(heads_b)):
        if h in heads_a and h in heads_b:
            what = "differs"
        elif h in heads_a:
            what = "only in " + name_a
        else:
            what = "only in " + name_b
        lines.append("    %s vs %s: %s: %s" % (name_a, name_b, what, h))
    if len(lines) > limit:
        lines = lines[:limit] + ["    ... %d more differences between %s and %s" % (len(lines) - limit, name_a, name_b)]
    return not only_a and not only_b, lines


# ------------------------------------------------------------------- main


NOTES = []


def pg_env(args):
    env = dict(os.environ)
    if args.port:
        env["PGPORT"] = str(args.port)
    if args.host:
        env["PGHOST"] = args.host
    return env


def connect(args, db):
    kw = {"dbname": db, "autocommit": True}
    if args.port:
        kw["port"] = args.port
    if args.host:
        kw["host"] = args.host
    return psycopg.connect(**kw)


def recreate(args, admin, db):
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(db)))


def trek_error(e):
    d = getattr(e, "diag", None)
    msg = str(e).strip()
    if d is not None and d.message_primary:
        msg = d.message_primary
        if d.message_detail:
            msg += " | DETAIL: " + d.message_detail
        if d.message_hint:
            msg += " | HINT: " + d.message_hint
        if d.context:
            ctx = d.context.strip().split("\n")
            msg += " | CONTEXT: " + " / ".join(ctx[:3])
    return msg


def trek_session(conn, fmt):
    conn.execute("SET client_min_messages = warning")
    if fmt:
        conn.execute(sql.SQL("SET trek.format = {}").format(sql.Literal(fmt)))


def trek_call(conn, folder, target, errors, label):
    """CALL trek_migrate(folder, target); folder is a path or a dict."""
    try:
        if isinstance(folder, dict):
            conn.execute("CALL trek_migrate(%s::jsonb, %s)", (Jsonb(folder), target))
        else:
            conn.execute("CALL trek_migrate(%s::text, %s)", (folder, target))
        return True
    except psycopg.Error as e:
        errors.append("%s (%s): %s" % (label, target, trek_error(e)))
        return False


def reconnect(args, db_b):
    """admin and B connections again, once the server has recovered"""
    for _ in range(60):
        try:
            admin = connect(args, "postgres")
            b = connect(args, db_b)
            trek_session(b, args.format)
            return admin, b
        except psycopg.OperationalError:
            time.sleep(1)
    raise RuntimeError("the server did not come back")


def current(conn):
    return conn.execute("SELECT trek_current()").fetchone()[0]


TOOL_TABLES = {
    "golang-migrate": "CREATE TABLE public.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
    "sqlx": "CREATE TABLE public._sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, "
            "installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, "
            "execution_time bigint NOT NULL)",
    "dbmate": "CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY)",
    "goose": "CREATE TABLE public.goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "
             "version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now())",
    "flyway": "CREATE TABLE public.flyway_schema_history (installed_rank int NOT NULL, version varchar(50), "
              "description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, "
              "checksum int, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), "
              "execution_time int NOT NULL, success boolean NOT NULL); "
              "ALTER TABLE public.flyway_schema_history ADD CONSTRAINT flyway_schema_history_pk "
              "PRIMARY KEY (installed_rank); "
              "CREATE INDEX flyway_schema_history_s_idx ON public.flyway_schema_history (success)",
    "diesel": "CREATE TABLE public.__diesel_schema_migrations (version varchar(50) PRIMARY KEY NOT NULL, "
              "run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)",
}


def tool_table(args, conn):
    """--tool-table: the tool's own state table, empty, as the tool creates
    it before the first migration (for histories whose files use it)."""
    if args.tool_table:
        conn.execute(TOOL_TABLES[args.tool])


def flyway_checksum(data):
    """Flyway's checksum: CRC-32 of the UTF-8 text without a leading BOM and
    without any CR or LF, as a signed 32-bit int."""
    text = data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    c = zlib.crc32(text.replace("\r", "").replace("\n", "").encode())
    return c - (1 << 32) if c >= 1 << 31 else c


def sqlx_description(name):
    rest = name.split("_", 1)[1]
    suffix = next(x for x in (".up.sql", ".down.sql", ".sql") if rest.endswith(x))
    while rest.endswith(suffix):
        rest = rest[:-len(suffix)]
    return rest.replace("_", " ")


class StateTable:
    """--adopt: the tool's state table, created and written as the tool does
    (rows after each migration, in autocommit; only the final rows matter)."""

    def __init__(self, tool, conn):
        self.tool, self.conn = tool, conn
        conn.execute(TOOL_TABLES[tool])
        if tool == "goose":
            conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true)")

    def set_golang(self, version, dirty):
        with self.conn.transaction():
            self.conn.execute("TRUNCATE schema_migrations")
            self.conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)",
                              (int(version), dirty))

    def before(self, m):
        if self.tool == "golang-migrate":
            self.set_golang(m.version, True)

    def after(self, folder, m, secs):
        c, v = self.conn, m.version
        if self.tool == "golang-migrate":
            self.set_golang(v, False)
        elif self.tool == "sqlx":
            if m.up is None:
                return
            data = open(os.path.join(folder, m.up), "rb").read()
            c.execute("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
                      "VALUES (%s, %s, true, sha384(%s), %s)",
                      (int(v), sqlx_description(m.up), data, int(secs * 1e9)))
        elif self.tool == "goose":
            c.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true)", (int(v),))
        elif self.tool == "dbmate":
            c.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (v,))
        elif self.tool == "diesel":
            c.execute('INSERT INTO "__diesel_schema_migrations" ("version") VALUES (%s)', (v,))
        elif self.tool == "flyway":
            name = os.path.basename(m.up)[:-4]
            desc = name.partition("__")[2].replace("_", " ")
            data = open(os.path.join(folder, m.up), "rb").read()
            c.execute("INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
                      "checksum, installed_by, execution_time, success) "
                      "SELECT coalesce(max(installed_rank), 0) + 1, %s, %s, 'SQL', %s, %s, current_user, %s, true "
                      "FROM flyway_schema_history",
                      (v, desc, m.up.replace(os.sep, "/"), flyway_checksum(data), int(secs * 1000)))


def build_a(args, admin, folder, migs, db, upto=None, repeatables=(), state=False):
    """Apply the migrations as the tool does (up to version upto), then the
    repeatables; with state, the tool's state table too: (dump, versions
    applied, last version, why it stopped or None)."""
    recreate(args, admin, db)
    a = connect(args, db)
    a.execute("SET client_min_messages = warning")
    table = StateTable(args.tool, a) if state else None
    if table is None:
        tool_table(args, a)
    applied, last, stop = 0, None, None
    for m in migs:
        if upto is not None and last == upto:
            break
        try:
            if table:
                table.before(m)
            t0 = time.monotonic()
            APPLY[args.tool](a, folder, m)
            if table:
                table.after(folder, m, time.monotonic() - t0)
        except MigrationError as e:
            stop = str(e)
            break
        applied += 1
        last = m.version
    for r in repeatables if stop is None else ():
        t0 = time.monotonic()
        flyway_apply(a, folder, r)
        if table:
            table.after(folder, r, time.monotonic() - t0)
    a.close()
    return dump(args, db), applied, last, stop


def adopt(args, admin, folder, migs, repeatables, target, errors):
    """--adopt: D built the tool's way with its state table, then adopted by
    trek, for the folder on the server (track default) and sent (track
    sent).  {label: result}, every failure also in errors."""
    db = args.db + "_d"
    out = collections.OrderedDict()
    _, applied, last, _ = build_a(args, admin, folder, migs, db, args.target, repeatables, state=True)
    before = dump(args, db)
    d = connect(args, db)
    d.execute("CREATE EXTENSION trek")
    trek_session(d, args.format)
    expect = last or "initial"
    for label, track, arg, cast in (("server folder", "default", folder, "text"),
                                    ("sent jsonb", "sent", Jsonb(sent_folder(args.tool, folder)), "jsonb")):
        what = "D adopt, " + label
        try:
            got = d.execute("SELECT trek_adopt(%%s::%s, %%s)" % cast, (arg, track)).fetchone()[0]
        except psycopg.Error as e:
            errors.append("%s: %s" % (what, trek_error(e)))
            out["adopt (%s)" % label] = "FAILED (see errors)"
            continue
        stamps = d.execute("SELECT count(*) FROM trek.history WHERE track = %s AND direction = 'stamp'",
                           (track,)).fetchone()[0]
        res = "returned %s (%s), %d stamps" % (got, "ok" if got == expect else "EXPECTED " + expect, stamps)
        if got != expect:
            errors.append("%s: trek_adopt returned %s, the tool's last version is %s" % (what, got, expect))
        try:
            d.execute("CALL trek_migrate(%%s::%s, %%s, track => %%s)" % cast, (arg, target, track))
        except psycopg.Error as e:
            errors.append("%s, then trek_migrate (%s): %s" % (what, target, trek_error(e)))
        ran = d.execute("SELECT count(*), string_agg(coalesce(file, to_revision), ', ' ORDER BY id) "
                        "FROM trek.history WHERE track = %s AND direction <> 'stamp'", (track,)).fetchone()
        res += "; migrate to %s ran %s" % (target, "nothing" if ran[0] == 0 else "%d: %s" % ran)
        if ran[0]:
            errors.append("%s, then trek_migrate (%s) ran %d migrations: %s" % (what, target, ran[0], ran[1]))
        try:
            d.execute("SELECT trek_verify(%%s::%s, %%s)" % cast, (arg, track))
            res += "; verify ok"
        except psycopg.Error as e:
            errors.append("%s, then trek_verify: %s" % (what, trek_error(e)))
            res += "; verify FAILED"
        out["adopt (%s)" % label] = res
    d.close()
    eq, lines = compare(before, dump(args, db), "D", "D adopted")
    out["adopt: schema unchanged"] = "yes" if eq else "NO"
    if lines:
        errors.extend(x.strip() for x in lines)
    out["D (tool with state table)"] = "%d of %d versions, last %s%s" % (
        applied, len(migs), expect, ", %d R__ rows" % len(repeatables) if repeatables else "")
    out.move_to_end("D (tool with state table)", last=False)
    admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tool", choices=TOOLS)
    p.add_argument("folder", help="the history's folder (read by the server too)")
    p.add_argument("--format", help="set trek.format (default: trek recognises the folder)")
    p.add_argument("--before-code", action="store_true",
                   help="goose: only the files before the first .go file (copied to a temporary folder)")
    p.add_argument("--roles", default="", help="comma-separated roles to create first")
    p.add_argument("--db", default="hist", help="prefix of the databases (default hist)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--tool-table", action="store_true",
                   help="create the tool's own (empty) state table first in every database")
    p.add_argument("--target", help="a version to migrate to instead of head (A stops there too)")
    p.add_argument("--no-sent", action="store_true", help="skip the sent-folder run")
    p.add_argument("--adopt", action="store_true",
                   help="also build D the tool's way with its state table and adopt it with trek_adopt()")
    args = p.parse_args()

    folder = os.path.abspath(args.folder)
    tmp = None
    if args.before_code:
        migs, _ = migrations_of(args.tool, folder)
        first_go = next((m for m in migs if m.up and m.up.endswith(".go")), None)
        tmp = tempfile.mkdtemp(prefix="trek-hist-")
        os.chmod(tmp, 0o755)
        for n in listdir_files(folder):
            m = re.match(r"^(\d+)_", n)
            if first_go is None or (m and int(m.group(1)) < first_go.key):
                shutil.copy(os.path.join(folder, n), tmp)
                os.chmod(os.path.join(tmp, n), 0o644)
        folder = tmp

    migs, repeatables = migrations_of(args.tool, folder)
    nfiles = sum(len(fs) for _, _, fs in os.walk(folder))
    summary = collections.OrderedDict()
    summary["tool"] = args.tool
    summary["folder"] = args.folder + (" (files before the first .go)" if args.before_code else "")
    summary["files"] = nfiles
    summary["versions"] = len(migs)
    errors = []
    db_a, db_b, db_c = args.db + "_a", args.db + "_b", args.db + "_c"
    admin = connect(args, "postgres")
    for r in filter(None, args.roles.split(",")):
        admin.execute(sql.SQL("DO $$BEGIN CREATE ROLE {}; EXCEPTION WHEN duplicate_object THEN END$$")
                      .format(sql.Identifier(r)))

    # A: as the tool would
    t0 = time.monotonic()
    dump_a, applied_a, last_a, stop_a = build_a(args, admin, folder, migs, db_a, args.target)
    summary["A (tool emulated)"] = "%d of %d versions in %.1f s%s" % (
        applied_a, len(migs), time.monotonic() - t0, "; stopped: " + stop_a if stop_a else "")
    dump_a_rep = None
    if repeatables:
        a = connect(args, db_a)
        a.execute("SET client_min_messages = warning")
        try:
            for r in repeatables:
                flyway_apply(a, folder, r)
            dump_a_rep = dump(args, db_a)
        except MigrationError as e:
            NOTES.append("flyway repeatable failed in A: %s" % e)
        a.close()
    admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db_a)))
    versions = [m.version for m in migs]
    # trek runs Flyway's repeatables after the versioned steps, as Flyway does
    dump_a_versioned = dump_a
    if dump_a_rep is not None:
        dump_a = dump_a_rep

    # B: trek, folder on the server
    recreate(args, admin, db_b)
    b = connect(args, db_b)
    b.execute("CREATE EXTENSION trek")
    tool_table(args, b)
    trek_session(b, args.format)
    target = args.target or "head"
    if stop_a is not None and last_a is not None and args.tool == "goose" and ".go" in stop_a:
        # goose stops at its first Go migration: trek must refuse head, and
        # run up to the version before it
        ok = trek_call(b, folder, "head", errors, "B server folder")
        summary["B head"] = "ok (expected a refusal of the .go file)" if ok else "refused (see errors)"
        target = last_a
    t0 = time.monotonic()
    ok_b = trek_call(b, folder, target, errors, "B server folder")
    secs = time.monotonic() - t0
    steps = b.execute("SELECT count(*) FROM trek.history WHERE direction = 'up'").fetchone()[0]
    summary["B (trek, server folder)"] = "%s to %s: %d steps in %.1f s, now at %s" % (
        "ok" if ok_b else "FAILED", target, steps, secs, current(b))
    try:
        plan = b.execute("SELECT trek_plan(%s::text, 'head', track => 'probe') ->> 'tool'", (folder,)).fetchone()[0]
        summary["tool recognised"] = plan
    except psycopg.Error as e:
        summary["tool recognised"] = "plan failed: " + trek_error(e)
    dump_b = dump(args, db_b)
    eq, lines = compare(dump_a, dump_b, "A", "B")
    summary["schema A = B"] = "yes" if eq else "NO"
    diff_ab = lines
    at_b = current(b)
    if at_b != (last_a or "initial") and at_b in versions + ["initial"]:
        # trek stopped early: compare with the tool's schema at the same version
        upto = None if at_b == "initial" else at_b
        d, _, _, _ = build_a(args, admin, folder, migs if upto else [], db_a, upto)
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db_a)))
        eq_at, lines_at = compare(d, dump_b, "A@" + at_b, "B")
        summary["schema A@%s = B (where trek stopped)" % at_b] = "yes" if eq_at else "NO"
        diff_ab = lines_at
    rep_lines = []
    if dump_a_rep is not None:
        only_rep = dump_a_rep - dump_a_versioned
        summary["R__ repeatables"] = "%d schema blocks come from %d R__ files" % (
            sum(only_rep.values()), len(repeatables))

    # C: trek, sent folder
    if not args.no_sent:
        recreate(args, admin, db_c)
        c = connect(args, db_c)
        c.execute("CREATE EXTENSION trek")
        tool_table(args, c)
        trek_session(c, args.format)
        files = sent_folder(args.tool, folder)
        t0 = time.monotonic()
        try:
            if target != "head":
                trek_call(c, files, "head", errors, "C sent folder")
            ok_c = trek_call(c, files, target, errors, "C sent folder")
            secs = time.monotonic() - t0
            steps = c.execute("SELECT count(*) FROM trek.history WHERE direction = 'up'").fetchone()[0]
            c.close()
            dump_c = dump(args, db_c)
            eq_c, lines_c = compare(dump_a, dump_c, "A", "C")
            summary["C (trek, sent jsonb, %d files)" % len(files)] = "%s: %d steps in %.1f s, schema A = C %s" % (
                "ok" if ok_c else "FAILED", steps, secs, "yes" if eq_c else "NO")
            diff_ab += lines_c
        except psycopg.OperationalError as e:
            # the server process died (the postmaster restarts the others too)
            errors.append("C sent folder (%s): SERVER CRASHED: %s" % (target, str(e).strip().split("\n")[0]))
            summary["C (trek, sent jsonb, %d files)" % len(files)] = "SERVER CRASHED (see the server log)"
            admin, b = reconnect(args, db_b)
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db_c)))

    # B: down to initial (or as far as trek goes), up again
    t0 = time.monotonic()
    down_errors = []
    before = current(b)
    if trek_call(b, folder, "initial", down_errors, "B down"):
        down = "down to initial ok"
    else:
        # as far down as possible, one step at a time
        n = 0
        while current(b) is not None and current(b) != "initial":
            at = current(b)
            if not trek_call(b, folder, "-1", down_errors, "B down one step from %s" % at):
                break
            n += 1
        down = "down to initial failed; then %d single steps down; stopped at %s" % (n, current(b))
    ndown = b.execute("SELECT count(*) FROM trek.history WHERE direction = 'down'").fetchone()[0]
    down += " (%d down steps from %s)" % (ndown, before)
    errors += down_errors
    up_ok = trek_call(b, folder, target, errors, "B up again")
    summary["B down/up"] = "%s; up again to %s %s, %.1f s" % (
        down, target, "ok" if up_ok else "FAILED", time.monotonic() - t0)
    b.close()
    dump_b2 = dump(args, db_b)
    eq2, lines2 = compare(dump_a, dump_b2, "A", "B after down/up")
    summary["schema A = B after down/up"] = "yes" if eq2 else "NO"
    diff_ab += lines2

    if args.adopt:
        summary.update(adopt(args, admin, folder, migs, repeatables, target, errors))

    print("==== %s" % args.tool)
    for k, v in summary.items():
        print("%-34s %s" % (k + ":", v))
    if diff_ab:
        print("differences:")
        print("\n".join(diff_ab))
    if rep_lines:
        print("schema added by R__ repeatables in A:")
        print("\n".join(rep_lines))
    for n in NOTES:
        print("note: " + n)
    if errors:
        print("trek errors (verbatim):")
        for e in errors:
            print("  - " + e)
    if tmp:
        shutil.rmtree(tmp)
    return 0 if (eq and eq2 and not errors) else 1


if __name__ == "__main__":
    sys.exit(main())
