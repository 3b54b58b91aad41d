"""Shared fixtures of trek's integration tests.

The tests run against real PostgreSQL servers (the major scripts/lib.sh
picks: PG_CONFIG's, else the Debian release's default).  `cluster` is the one
scripts/test.sh started (found through PGHOST and PGPORT); when those are
not set, for example when pytest is run by hand after `make install`, a
throwaway cluster is started here instead.  Tests that crash or replicate a
server start clusters of their own with Cluster.create or
Cluster.replica_of, and remove them again with Cluster.destroy.

Servers run as the OS user postgres when the tests run as root, so migration
folders are written under a directory that every user may read.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def default_pgbin():
    """The bin folder scripts/lib.sh picks: PG_CONFIG's, else the default
    PostgreSQL major of this Debian release."""
    p = subprocess.run(["bash", "-c", 'source "$1" && echo "$PGBIN"', "-",
                        str(ROOT / "scripts" / "lib.sh")],
                       capture_output=True, text=True, check=True)
    return p.stdout.strip()


PGBIN = Path(os.environ.get("TREK_PGBIN") or os.environ.get("PGBIN")
             or default_pgbin())
IS_ROOT = os.geteuid() == 0


def pg_major():
    out = subprocess.run([str(PGBIN / "pg_config"), "--version"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[1].split(".")[0])


PG_MAJOR = pg_major()
# trek keeps trek_execute()'s runs in shared memory: from
# shared_preload_libraries before PostgreSQL 17, from the dynamic shared
# memory registry from 17 on (src/runs.c)
TREK_PRELOAD = "trek" if PG_MAJOR < 17 else ""

# fourth key field of trek's lock on a track (src/state.c): "tr" in ASCII,
# which pg_locks shows as objsubid; no SQL function takes a lock with it
TREK_LOCK_KIND = 0x7472


def run_as_owner(args, check=True, timeout=120):
    """Run a server program as the cluster owner (postgres when we are
    root) from /, so that our working directory does not matter."""
    args = [str(a) for a in args]
    if IS_ROOT:
        args = ["runuser", "-u", "postgres", "--"] + args
    p = subprocess.run(args, cwd="/", capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s%s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate until it returns something true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Cluster:
    """A PostgreSQL server: its data folder, socket folder and port."""

    def __init__(self, name, base=None, host=None, port=None, datadir=None):
        self.name = name
        self.base = base                    # our own folder, None if borrowed
        self.host = host
        self.port = port
        self.datadir = datadir

    @classmethod
    def _new(cls, name):
        base = Path(tempfile.mkdtemp(prefix="trek-%s." % name))
        (base / "sock").mkdir()
        if IS_ROOT:
            shutil.chown(base, "postgres", "postgres")
            shutil.chown(base / "sock", "postgres", "postgres")
        return cls(name, base=base, host=str(base / "sock"),
                   datadir=base / "data")

    @classmethod
    def create(cls, name, settings=None):
        """initdb a new cluster (not started)."""
        cluster = cls._new(name)
        run_as_owner([PGBIN / "initdb", "-D", cluster.datadir, "--auth=trust",
                      "-U", "postgres", "-E", "UTF8", "--locale=C",
                      "--no-sync"])
        base = {"unix_socket_directories": cluster.host}
        if TREK_PRELOAD:
            base["shared_preload_libraries"] = TREK_PRELOAD
        cluster.configure({**base, **(settings or {})})
        return cluster

    @classmethod
    def replica_of(cls, name, primary):
        """pg_basebackup -R of a running cluster: a hot standby (not started)."""
        cluster = cls._new(name)
        run_as_owner([PGBIN / "pg_basebackup", "-D", cluster.datadir, "-R",
                      "-X", "stream", "-c", "fast", "--no-sync",
                      "-h", primary.host, "-p", primary.port, "-U", "postgres"])
        # the copy carries the primary's socket folder: give it its own
        cluster.configure({"unix_socket_directories": cluster.host})
        return cluster

    def configure(self, settings):
        """Append settings to postgresql.auto.conf (read after the copy of
        the primary's postgresql.conf a base backup brings along)."""
        lines = ["%s = '%s'\n" % (k, v) for k, v in settings.items()]
        with open(self.datadir / "postgresql.auto.conf", "a") as f:
            f.writelines(lines)

    @property
    def log(self):
        return self.base / "server.log"

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self):
        """Start on a free port, or the one used before; Unix socket only."""
        if self.port is None:
            self.port = free_port()
        p = run_as_owner([PGBIN / "pg_ctl", "-D", self.datadir, "-l", self.log,
                          "-o", "-p %d -c listen_addresses=''" % self.port,
                          "-w", "-t", "60", "start"], check=False)
        if p.returncode != 0:
            raise RuntimeError("could not start cluster %s:\n%s"
                               % (self.name, self.log_text()[-3000:]))
        return self

    def stop(self, mode="fast"):
        if self.datadir and (self.datadir / "postmaster.pid").exists():
            run_as_owner([PGBIN / "pg_ctl", "-D", self.datadir, "-m", mode,
                          "-w", "-t", "60", "stop"], check=False)

    def destroy(self):
        if self.base is None:
            return
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def conninfo(self, dbname="postgres"):
        return dict(host=self.host, port=self.port, user="postgres",
                    dbname=dbname)

    def connect(self, dbname="postgres", autocommit=True, **kwargs):
        return psycopg.connect(**self.conninfo(dbname), autocommit=autocommit,
                               **kwargs)

    def query(self, sql, params=None, dbname="postgres"):
        """Run one statement in a new session; return all rows (or None)."""
        with self.connect(dbname) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def ready(self, dbname="postgres"):
        try:
            with self.connect(dbname, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def create_database(self, prefix="trek_it", extension=True):
        name = "%s_%s" % (prefix, uuid.uuid4().hex[:8])
        self.query('CREATE DATABASE "%s"' % name)
        if extension:
            self.query("CREATE EXTENSION trek", dbname=name)
        return name

    def drop_database(self, name):
        self.query('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


@pytest.fixture(scope="session")
def cluster():
    """The cluster scripts/test.sh started, or one of our own."""
    if os.environ.get("PGHOST") and os.environ.get("PGPORT"):
        yield Cluster("test", host=os.environ["PGHOST"],
                      port=int(os.environ["PGPORT"]))
        return
    own = Cluster.create("test")
    own.configure({"shared_preload_libraries":
                   ",".join(filter(None, ["pg_cron", TREK_PRELOAD])),
                   "cron.database_name": "postgres",
                   "cron.host": own.host})
    try:
        yield own.start()
    finally:
        own.destroy()


@pytest.fixture(scope="session", autouse=True)
def libpq_env(cluster):
    """Point libpq's PGHOST, PGPORT and PGUSER at the cluster, for the tests
    that connect with psycopg's defaults."""
    saved = {k: os.environ.get(k) for k in ("PGHOST", "PGPORT", "PGUSER")}
    os.environ.update(PGHOST=cluster.host, PGPORT=str(cluster.port),
                      PGUSER=os.environ.get("PGUSER") or "postgres")
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def database(cluster):
    """A new database with trek installed, dropped after the test."""
    name = cluster.create_database()
    yield name
    cluster.drop_database(name)


@pytest.fixture(scope="session")
def folder_root():
    root = Path(tempfile.mkdtemp(prefix="trek-migrations."))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def staged(folder_root):
    """staged("examples/people"): a copy of a folder of the project that the
    server can read (a clone in a home folder is closed to its OS user)."""
    copies = {}

    def stage(relpath):
        if relpath not in copies:
            dest = Path(tempfile.mkdtemp(dir=folder_root)) / Path(relpath).name
            shutil.copytree(ROOT / relpath, dest)
            for path in [dest.parent, dest, *dest.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            copies[relpath] = dest
        return copies[relpath]
    return stage


class Folder:
    """A migration folder the server can read."""

    def __init__(self, path):
        self.path = path

    def __str__(self):
        return str(self.path)

    def add(self, name, sql):
        f = self.path / name
        f.write_text(sql)
        f.chmod(0o644)
        return f

    def remove(self, name):
        (self.path / name).unlink()


@pytest.fixture
def make_folder(folder_root):
    """make_folder({file name: SQL}) -> Folder, in a fresh folder."""
    def make(files=None):
        path = Path(tempfile.mkdtemp(dir=folder_root))
        path.chmod(0o755)
        folder = Folder(path)
        for name, sql in (files or {}).items():
            folder.add(name, sql)
        return folder
    return make


def copy_fixture(make_folder, name):
    """A fresh copy of test/fixtures/NAME that the test may change."""
    folder = make_folder()
    for src in sorted((ROOT / "test" / "fixtures" / name).iterdir()):
        shutil.copyfile(src, folder.path / src.name)
        (folder.path / src.name).chmod(0o644)
    return folder


@pytest.fixture
def area():
    """An empty folder the server can read, for a test to fill with what
    git cannot hold (modes, links, FIFOs); modes are given back before it is
    removed."""
    root = Path(tempfile.mkdtemp(prefix="trek-area."))
    root.chmod(0o755)
    yield root
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if not p.is_symlink() and (p.is_dir() or p.is_file()):
                p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fenced(area):
    """area with the folders allowed/ (for trek.allowed_directories) and
    outside/ in it."""
    for sub in ("allowed", "outside"):
        (area / sub).mkdir()
        (area / sub).chmod(0o755)
    return area


@pytest.fixture
def app_role(cluster, database):
    """A role without pg_read_server_files that may plan and execute."""
    role = "regress_trek_app_%s" % uuid.uuid4().hex[:8]
    with cluster.connect(database) as admin:
        admin.execute('CREATE ROLE "%s"' % role)
        admin.execute('GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),'
                      ' trek_execute(jsonb), trek_current(text) TO "%s"' % role)
        admin.execute('GRANT CREATE ON SCHEMA public TO "%s"' % role)
    yield role
    with cluster.connect(database) as admin:
        admin.execute('DROP OWNED BY "%s"' % role)
        admin.execute('DROP ROLE "%s"' % role)


def error_of(conn, sql, params=()):
    """The diagnostics of the error that running sql raises."""
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, params)
    return e.value.diag


def notices(conn):
    """The primary messages of the notices conn receives from now on."""
    seen = []
    conn.add_notice_handler(lambda d: seen.append(d.message_primary))
    return seen


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_changed_file(err, file, planned, now, context,
                       hint="Make a new plan with trek_plan()."):
    """err is the error of running a plan whose file changed from SHA-256
    planned to now since planning."""
    d = err.diag
    assert err.sqlstate == "55000"
    assert d.message_primary == (
        'migration file "%s" changed since the plan was made' % file)
    assert d.message_detail == (
        "The plan has SHA-256 %s, the file now has %s." % (planned, now))
    assert d.message_hint == hint
    assert d.context == context


def chain(n, extra="", prefix="t"):
    """Files of a linear folder initial -> rev1 -> ... -> revn and back.

    Going up to rev<k> creates table <prefix><k>, going down drops it; each
    logs its file name in table migration_log (which the test creates), so
    the log lists each migration that ran and committed.  extra is SQL
    appended to every file.
    """
    files = {}
    for k in range(1, n + 1):
        frm = "initial" if k == 1 else "rev%d" % (k - 1)
        up = "202401%02d_%s_up_rev%d.sql" % (k, frm, k)
        down = "202401%02d_rev%d_down_%s.sql" % (k, k, frm)
        files[up] = ("CREATE TABLE %s%d (id int PRIMARY KEY);\n"
                     "INSERT INTO migration_log (file) VALUES ('%s');\n%s"
                     % (prefix, k, up, extra))
        files[down] = ("DROP TABLE %s%d;\n"
                       "INSERT INTO migration_log (file) VALUES ('%s');\n%s"
                       % (prefix, k, down, extra))
    return files


MIGRATION_LOG = ("CREATE TABLE migration_log (id bigserial PRIMARY KEY,"
                 " file text NOT NULL)")


def tables(conn, prefix="t"):
    """Sorted names of the tables in schema public starting with prefix."""
    return [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE nspname = 'public'"
        " AND relkind = 'r' AND relname ~ %s ORDER BY 1",
        ("^%s[0-9]+$" % prefix,))]


def history(conn, track="default"):
    return conn.execute(
        "SELECT from_revision, to_revision, direction, file"
        " FROM trek.history WHERE track = %s ORDER BY id", (track,)).fetchall()
