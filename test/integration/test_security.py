"""A hostile grantee against trek, where it takes two processes.

A role confined to trek.allowed_directories that can write inside an
allowed folder (a deploy user) swaps names for symbolic links in a loop
with renameat2(RENAME_EXCHANGE), while the role's session plans and
executes: trek must judge and read what it opened, never a name it
checked.  Also: trek's track lock cannot be taken from SQL, a FIFO swapped
in is never waited on, very long missing paths cost little memory, and a
tenant cannot learn another tenant's applied files through trek_status or
trek_verify.
"""

import hashlib
import struct
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import IS_ROOT

SWAP_SECONDS = 4

SWAPPER = textwrap.dedent("""
    import ctypes, os, sys, time
    libc = ctypes.CDLL(None, use_errno=True)
    a, b, seconds = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        if libc.renameat2(-100, a, -100, b, 2) != 0:
            sys.exit("renameat2: errno %d" % ctypes.get_errno())
        n += 1
    # leave the names as they were found
    if n % 2:
        libc.renameat2(-100, a, -100, b, 2)
    print(n)
""")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def owned_by_server(path, mode):
    """Make path the server's own file (readable by it alone)."""
    if IS_ROOT:
        shutil.chown(path, "postgres", "postgres")
    path.chmod(mode)


@pytest.fixture
def confined(cluster, database, fenced, app_role):
    """A session of a role confined to fenced/allowed: a superuser's session
    that set trek.allowed_directories, then SET ROLE to the role."""
    conn = cluster.connect(database)
    conn.execute("SELECT set_config('trek.allowed_directories', %s, false)",
                 (str(fenced / "allowed"),))
    conn.execute('SET ROLE "%s"' % app_role)
    yield conn
    conn.close()


def start_swapper(a, b, seconds=SWAP_SECONDS):
    return subprocess.Popen([sys.executable, "-c", SWAPPER, str(a), str(b),
                             str(seconds)], stdout=subprocess.PIPE, text=True)


def finish_swapper(proc):
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    swaps = int(out.strip())
    assert swaps > 1000, "the swapper hardly ran (%d swaps)" % swaps
    return swaps


def test_plan_never_hashes_a_file_outside_the_allowed_folders(confined, fenced):
    """A planned file is swapped with a link to a private file outside:
    trek_plan never returns that file's SHA-256."""
    folder = fenced / "allowed" / "app"
    folder.mkdir()
    folder.chmod(0o755)
    mine = b"CREATE TABLE mine (id int);\n"
    (folder / "20240101_initial_up_one.sql").write_bytes(mine)
    (folder / "20240101_initial_up_one.sql").chmod(0o644)
    secret = fenced / "outside" / "secret.sql"
    secret.write_bytes(b"-- the password is swordfish\n")
    owned_by_server(secret, 0o600)
    os.symlink(secret, folder / ".swap")

    swapper = start_swapper(folder / "20240101_initial_up_one.sql",
                            folder / ".swap")
    seen = {"mine": 0, "denied": 0, "secret": 0, "other": 0}
    deadline = time.monotonic() + SWAP_SECONDS
    while time.monotonic() < deadline:
        try:
            plan = confined.execute("SELECT trek_plan(%s, 'one', track => 'sec')",
                                    (str(folder),)).fetchone()[0]
        except psycopg.errors.InsufficientPrivilege:
            seen["denied"] += 1
            continue
        except psycopg.Error:
            seen["other"] += 1
            continue
        digest = plan["steps"][0]["sha256"]
        if digest == sha256(mine):
            seen["mine"] += 1
        elif digest == sha256(secret.read_bytes()):
            seen["secret"] += 1
        else:
            seen["other"] += 1
    finish_swapper(swapper)
    assert seen["secret"] == 0, seen
    # both states of the name were met: the race was really run
    assert seen["mine"] > 0 and seen["denied"] > 0, seen


def test_forged_plan_never_runs_another_folders_migration(confined, cluster,
                                                          database, fenced):
    """A hand-made plan carries the SHA-256 of another application's
    migration, and the planned name is swapped with a link to that file:
    trek_execute never runs it, and records nothing."""
    folder = fenced / "allowed" / "app"
    folder.mkdir()
    folder.chmod(0o755)
    name = "20240101_initial_up_one.sql"
    (folder / name).write_text("CREATE TABLE mine (id int);\n")
    (folder / name).chmod(0o644)
    other = fenced / "outside" / "other"
    other.mkdir()
    theirs = b"CREATE TABLE stolen (id int);\n"
    (other / name).write_bytes(theirs)
    owned_by_server(other / name, 0o600)
    os.symlink(other / name, folder / ".swap")
    forged = psycopg.types.json.Jsonb({
        "format": 1, "track": "sec_forged", "dir": str(folder),
        "from": "initial", "to": "one", "direction": "up",
        "steps": [{"file": name, "from": "initial", "to": "one",
                   "direction": "up", "sha256": sha256(theirs)}]})

    swapper = start_swapper(folder / name, folder / ".swap")
    ran = denied = changed = 0
    deadline = time.monotonic() + SWAP_SECONDS
    while time.monotonic() < deadline:
        try:
            with confined.transaction(force_rollback=True):
                confined.execute("SELECT trek_execute(%s)", (forged,))
                ran += 1
        except psycopg.errors.InsufficientPrivilege:
            denied += 1
        except psycopg.errors.ObjectNotInPrerequisiteState:
            changed += 1
    finish_swapper(swapper)
    assert ran == 0
    assert denied > 0 and changed > 0, (denied, changed)
    with cluster.connect(database) as conn:
        assert conn.execute("SELECT to_regclass('stolen') IS NULL,"
                            " (SELECT count(*) FROM trek.history)").fetchone() \
            == (True, 0)


def test_folder_swap_never_lists_a_private_folder(confined, fenced):
    """The planned folder itself is swapped with a link to a private folder
    outside: no name of that folder shows in any result, warning or error."""
    folder = fenced / "allowed" / "app"
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "20240101_initial_up_one.sql").write_text("SELECT 1;\n")
    (folder / "20240101_initial_up_one.sql").chmod(0o644)
    private = fenced / "outside" / "private"
    private.mkdir()
    for n in ("20240101_initial_up_hushhush.sql", "20240102_hushhush_UP_x.sql"):
        (private / n).write_text("SELECT 2;\n")
        owned_by_server(private / n, 0o600)
    owned_by_server(private, 0o700)
    os.symlink(private, fenced / "allowed" / ".swap")

    messages = []
    confined.add_notice_handler(lambda d: messages.append(d.message_primary))
    swapper = start_swapper(folder, fenced / "allowed" / ".swap")
    outcomes = set()
    deadline = time.monotonic() + SWAP_SECONDS
    while time.monotonic() < deadline:
        try:
            plan = confined.execute("SELECT trek_plan(%s, 'head', track => 'sec')",
                                    (str(folder),)).fetchone()[0]
            messages.append(str(plan))
            outcomes.add("planned")
        except psycopg.Error as e:
            messages.append(str(e))
            outcomes.add(type(e).__name__)
    finish_swapper(swapper)
    assert not [m for m in messages if "hushhush" in m]
    assert "planned" in outcomes and "InsufficientPrivilege" in outcomes, outcomes


def test_fifo_swapped_in_is_never_waited_on(cluster, database, fenced):
    """A planned file of more than 64 kB is swapped with a FIFO in a loop:
    no trek_execute call waits for a writer."""
    folder = fenced / "allowed" / "big"
    folder.mkdir()
    folder.chmod(0o755)
    name = "20240101_initial_up_one.sql"
    body = "SELECT 1;\n" + "-- padding\n" * 8000
    (folder / name).write_text(body)
    (folder / name).chmod(0o644)
    os.mkfifo(folder / ".swap")
    with cluster.connect(database) as conn:
        conn.execute("SET statement_timeout = '20s'")
        plan = conn.execute("SELECT trek_plan(%s, 'one')",
                            (str(folder),)).fetchone()[0]
        swapper = start_swapper(folder / name, folder / ".swap")
        slowest = 0.0
        outcomes = set()
        deadline = time.monotonic() + SWAP_SECONDS
        while time.monotonic() < deadline:
            t = time.monotonic()
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("SELECT trek_execute(%s)",
                                 (psycopg.types.json.Jsonb(plan),))
                    outcomes.add("ran")
            except psycopg.errors.WrongObjectType:
                outcomes.add("fifo refused")
            except psycopg.errors.UndefinedFile:
                outcomes.add("gone")
            slowest = max(slowest, time.monotonic() - t)
        finish_swapper(swapper)
    assert slowest < 2.0, slowest
    assert "ran" in outcomes and "fifo refused" in outcomes, outcomes


def test_track_lock_cannot_be_taken_from_sql(cluster, database, make_folder):
    """A session holding every advisory lock that SQL can name for the
    track (both key forms) does not block trek."""
    folder = make_folder({"20240101_initial_up_one.sql": "SELECT 1;\n"})
    with cluster.connect(database) as blocker, \
            cluster.connect(database) as conn:
        # the two 32-bit halves of the track's key (src/state.c), in both
        # key forms SQL can name
        digest = hashlib.sha256(b"default").digest()
        high, low = struct.unpack("=ii", digest[:8])
        blocker.execute("SELECT pg_advisory_lock(%s, %s)", (high, low))
        blocker.execute("SELECT pg_advisory_lock(%s::bigint << 32 | (%s::bigint & 4294967295))",
                        (high, low))
        conn.execute("SET lock_timeout = '2s'")
        assert conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                            (str(folder),)).fetchone()[0] == "one"


def peak_memory_kb(conn):
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM for backend %d" % pid)


@pytest.mark.parametrize("depth", [2000, 32000, 64000])
def test_long_missing_paths_cost_little_memory(confined, fenced, depth):
    """A confined role asks for a missing folder under an allowed one with
    a very long path: the backend's peak memory grows by a few MB at most,
    and the answer is a clear error."""
    confined.execute("SELECT 1")
    before = peak_memory_kb(confined)
    path = str(fenced / "allowed" / "x") + "/a" * depth
    with pytest.raises(psycopg.Error) as err:
        confined.execute("SELECT trek_plan(%s, 'head')", (path,))
    after = peak_memory_kb(confined)
    assert after - before < 8 * 1024, (before, after)
    if len(path) >= 4096:
        assert err.value.diag.message_primary == "migration folder path is too long"
    else:
        assert err.value.sqlstate == "58P01"


@pytest.fixture
def tenants(cluster, database, fenced):
    """Roles a and b, each logging in on its own, and a member of b: all
    granted trek's functions and confined to fenced/allowed (set for the
    database by a superuser)."""
    suffix = uuid.uuid4().hex[:8]
    roles = {k: "regress_trek_%s_%s" % (k, suffix) for k in ("a", "b", "b_member")}
    with cluster.connect(database) as admin:
        admin.execute('CREATE ROLE "%s" LOGIN' % roles["a"])
        admin.execute('CREATE ROLE "%s" LOGIN' % roles["b"])
        admin.execute('CREATE ROLE "%s" LOGIN IN ROLE "%s"'
                      % (roles["b_member"], roles["b"]))
        admin.execute('GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),'
                      ' trek_execute(jsonb), trek_status(text, text),'
                      ' trek_verify(text, text) TO %s'
                      % ", ".join('"%s"' % r for r in roles.values()))
        admin.execute('ALTER DATABASE "%s" SET trek.allowed_directories = %s'
                      % (database, admin.execute("SELECT quote_literal(%s)",
                                                 (str(fenced / "allowed"),)).fetchone()[0]))
    yield roles
    with cluster.connect(database) as admin:
        for r in roles.values():
            admin.execute('DROP OWNED BY "%s"' % r)
        admin.execute("DROP ROLE %s" % ", ".join('"%s"' % r for r in roles.values()))


def test_tenant_cannot_read_or_confirm_another_tenants_files(cluster, database,
                                                             fenced, tenants):
    """Tenant a, in a folder of its own, writes candidates for a file that
    tenant b applied and asks trek_status and trek_verify about b's track:
    the answer is the same for a wrong and a right guess, and names none of
    b's files.  b, a member of b and a superuser get the whole answer."""
    theirs = fenced / "allowed" / "b"
    mine = fenced / "allowed" / "a"
    for folder in (theirs, mine):
        folder.mkdir()
        folder.chmod(0o755)
    secret = "20240101_initial_up_acme.sql"
    later = "20240102_acme_up_payroll.sql"
    (theirs / secret).write_text("SELECT 'hunter2' AS password;\n")
    (theirs / later).write_text("SELECT 1;\n")
    for f in theirs.iterdir():
        f.chmod(0o644)

    def connect(user):
        return psycopg.connect(**dict(cluster.conninfo(database), user=user),
                               autocommit=True)

    def status(user, folder):
        with connect(user) as conn:
            return conn.execute(
                "SELECT current, changed_files, missing_files, last_run, note"
                " FROM trek_status(%s, 'b_app')", (str(folder),)).fetchone()

    def verify(user, folder):
        with connect(user) as conn:
            try:
                conn.execute("SELECT trek_verify(%s, 'b_app')", (str(folder),))
            except psycopg.Error as e:
                return e.sqlstate, e.diag.message_primary, e.diag.message_detail
            return None

    with connect(tenants["b"]) as conn:
        assert conn.execute("SELECT trek_execute(trek_plan(%s, 'head',"
                            " track => 'b_app'))",
                            (str(theirs),)).fetchone()[0] == "payroll"

    answers = []
    for guess in ("SELECT 'letmein' AS password;\n",
                  "SELECT 'hunter2' AS password;\n"):
        (mine / secret).write_text(guess)
        (mine / secret).chmod(0o644)
        row = status(tenants["a"], mine)
        err = verify(tenants["a"], mine)
        answers.append((row, err))
        assert row[1:4] == (None, None, None), row
        assert row[0] == "payroll"          # what planning tells anyway
        assert "owner" in row[4]
        assert err[0] == "42501", err
        assert err[1] == 'permission denied to verify track "b_app"'
        assert err[2] == 'Track "b_app" belongs to role "%s".' % tenants["b"]
        for text in (repr(row), repr(err)):
            assert secret not in text and later not in text
    assert answers[0] == answers[1]
    # nor does b's own folder, read by a, tell more
    assert status(tenants["a"], theirs)[1:4] == (None, None, None)
    assert verify(tenants["a"], theirs)[0] == "42501"

    # the owner, a member of it and a superuser see what a may not
    for user in (tenants["b"], tenants["b_member"], "postgres"):
        (mine / secret).write_text("SELECT 'letmein' AS password;\n")
        assert status(user, mine)[1:4] == ([secret], [later], "done")
        (mine / secret).write_text("SELECT 'hunter2' AS password;\n")
        assert status(user, mine)[1:4] == ([], [later], "done")
        err = verify(user, mine)
        assert err[0] == "55000" and later in err[2], err
        assert status(user, theirs)[1:4] == ([], [], "done")
        assert verify(user, theirs) is None
