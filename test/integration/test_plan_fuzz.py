"""Random and mutated plans: no plan may crash the server.

Plans travel as jsonb and come back from the caller, so trek_execute(jsonb)
and trek_migrate(jsonb) must turn anything into a clean error or a correct
run.  The fuzz test starts from valid plans of three small real folders
(written here: the same edges with different contents, two inside
trek.allowed_directories and one outside), mutates them
(keys dropped, added, duplicated, of every type; steps dropped, repeated,
reordered, continued from the middle; huge strings, odd Unicode, deep
nesting, wrong SHA-256s, file names with "/" or ".."; plans of another
track, folder or revision) or makes up jsonb at random, and passes each to
trek_execute (alone or inside a transaction that commits or rolls back)
or to CALL trek_migrate (at the top level, in a transaction block, from a
DO block), as a confined role with EXECUTE and sometimes as a superuser.

Afterwards: the server never restarted (no session was lost, a session
open throughout still works and pg_postmaster_start_time() is unchanged,
no "terminated by signal" in its log), no error was internal (XX000),
and every track's history is one that the folders' real files give, with
one row per migration that ran (each migration logs itself).

It runs on a cluster of its own.  Seeded and reproducible:
TREK_FUZZ_SEED (default 20261207; "random" picks one) and TREK_FUZZ_CASES
(default 3000) change it; the seed and the statistics are printed (pytest
-s shows them).
"""

import copy
import hashlib
import json
import os
import random
import re
import resource
import shutil
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import Cluster, wait_for

DEFAULT_SEED = 20261207
DEFAULT_CASES = 3000

ROLE = "regress_trek_fuzz"
TRACKS = ["fz", "fz2", "default"]
REVISIONS = ["initial", "r1", "r2", "r3", "r4", "p1"]

# the bounds of src/plan.h
MAX_NAME = 255
MAX_DIR = 4095


def folder_files(tag):
    """File name -> text of a folder: initial -> r1 -> r2 -> r3 -> r4 and
    back, a step outside a transaction (r3 -> r4), and a Python branch
    (r2 -> p1).  Every migration logs its folder's tag and its file name
    in fz_log, so the log lists what ran and committed."""
    files = {}
    chain = ["initial", "r1", "r2", "r3", "r4"]
    for k in range(1, len(chain)):
        frm, to = chain[k - 1], chain[k]
        for name in ("202401%02d_%s_up_%s.sql" % (k, frm, to),
                     "202402%02d_%s_down_%s.sql" % (k, to, frm)):
            head = "-- trek:no-transaction\n" if to == "r4" or frm == "r4" else ""
            files[name] = ("%sINSERT INTO fz_log (tag, file) VALUES ('%s', '%s');\n"
                           % (head, tag, name))
    files["20240301_r2_up_p1.py"] = (
        "async def run_migration(conn):\n"
        "    await conn.execute(\"INSERT INTO fz_log (tag, file)"
        " VALUES ('%s', '20240301_r2_up_p1.py')\")\n" % tag)
    files["README.txt"] = "not a migration\n"
    return files


def parse_name(name):
    m = re.fullmatch(r"\d{8}_(\w+)_(up|down)_(\w+)\.(sql|py)", name, re.ASCII)
    return (m.group(1), m.group(3), m.group(2)) if m else None


# ---- jsonb text -----------------------------------------------------------

class Raw:
    """JSON text put into a document as it is (duplicate keys, nesting too
    deep for json.dumps, numbers Python would print otherwise)."""

    def __init__(self, text):
        self.text = text


def dumps(value, ensure_ascii=False):
    raws = []

    def swap(v):
        if isinstance(v, Raw):
            raws.append(v.text)
            return "\x00raw%d\x00" % (len(raws) - 1)
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), ensure_ascii=ensure_ascii)
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps("\x00raw%d\x00" % i), raw, 1)
    return text


ODD_TEXT = [
    "", " ", "é", "e\u0301", "\u200b", "\u202e", "\ufeff", "\uffff", "\U0001f600",
    "\U0010fffd", "ß" * 100, "日本語", "\u00a0", "\\", "\"", "'", "%s", "%n%n%n",
    "\t\n\r", "\u0001", "\u007f", "NULL", "null", "../", "/", ".", "..",
]


class Gen:
    """Values, strings and plans from one random.Random."""

    def __init__(self, rng, folders):
        self.r = rng
        self.folders = folders          # tag -> (path, files)

    def odd_string(self):
        r = self.r
        k = r.random()
        if k < 0.3:
            return r.choice(ODD_TEXT)
        if k < 0.5:
            return "".join(r.choice(ODD_TEXT) for _ in range(r.randint(1, 8)))
        if k < 0.7:
            return "".join(chr(r.choice([r.randint(1, 0x7f), r.randint(0x80, 0x7ff),
                                         r.randint(0x800, 0xd7ff), r.randint(0xe000, 0xffff),
                                         r.randint(0x10000, 0x10ffff)]))
                           for _ in range(r.randint(1, 40)))
        if k < 0.9:
            return r.choice(["a", "_", "x", "é", "\U0001f600", "0"]) * \
                r.choice([MAX_NAME - 1, MAX_NAME, MAX_NAME + 1, MAX_DIR, MAX_DIR + 1,
                          1000, 65536])
        return "x" * r.choice([1 << 20, 3 << 19])

    def scalar(self):
        r = self.r
        return r.choice([
            lambda: None, lambda: True, lambda: False, lambda: 0, lambda: 1, lambda: -1,
            lambda: 2 ** 31, lambda: 2 ** 63, lambda: -2 ** 63 - 1, lambda: 0.5,
            lambda: 1e308, lambda: Raw("1" + "0" * 400), lambda: Raw("1.0"),
            lambda: Raw("1e0"), lambda: Raw("-0"), lambda: Raw("0.99999999999999999999999"),
            lambda: Raw("1" + "0" * 5000 + "e-5000"), self.odd_string,
            lambda: r.choice(REVISIONS), lambda: r.choice(["up", "down", "none", "auto", "stamp"]),
        ])()

    def value(self, depth=0):
        r = self.r
        k = r.random()
        if depth > 3 or k < 0.6:
            return self.scalar()
        if k < 0.75:
            return [self.value(depth + 1) for _ in range(r.randint(0, 4))]
        if k < 0.9:
            return {self.key(): self.value(depth + 1) for _ in range(r.randint(0, 4))}
        n = r.choice([10, 100, 1000, 10000, 200000])
        opener, closer = r.choice([("[", "]"), ('{"a":', "}")])
        return Raw(opener * n + "1" + closer * n)

    def key(self):
        return self.r.choice(["format", "track", "dir", "from", "to", "direction", "steps",
                              "file", "sha256", "no_transaction", "", "extra",
                              self.odd_string()[:50]])

    def random_document(self):
        r = self.r
        k = r.random()
        if k < 0.2:
            return self.value()
        doc = {self.key(): self.value() for _ in range(r.randint(0, 8))}
        if k < 0.6:
            doc.setdefault("format", 1)
            doc.setdefault("steps", [{self.key(): self.value() for _ in range(r.randint(0, 6))}
                                     for _ in range(r.randint(0, 4))])
        return doc

    def sha(self):
        r = self.r
        return r.choice([
            lambda: "%064x" % r.getrandbits(256),
            lambda: ("%064x" % r.getrandbits(256)).upper(),
            lambda: "%063x" % r.getrandbits(250),
            lambda: "%065x" % r.getrandbits(260),
            lambda: "0" * 64, lambda: "g" * 64, lambda: "",
            lambda: self.real_sha(),
        ])()

    def real_sha(self):
        tag = self.r.choice(list(self.folders))
        path, files = self.folders[tag]
        name = self.r.choice(sorted(n for n in files if parse_name(n)))
        return hashlib.sha256(files[name].encode()).hexdigest()

    def file_name(self, step):
        r = self.r
        tag = r.choice(list(self.folders))
        path, files = self.folders[tag]
        real = sorted(n for n in files if parse_name(n))
        frm, to = step.get("from"), step.get("to")
        frm = frm if isinstance(frm, str) else "a"
        to = to if isinstance(to, str) else "b"
        return r.choice([
            lambda: r.choice(real),
            lambda: "../%s/%s" % (Path(path).name, r.choice(real)),
            lambda: "%s/%s" % (path, r.choice(real)),
            lambda: "./" + r.choice(real),
            lambda: "..", lambda: ".", lambda: "/", lambda: "",
            lambda: "20240101_%s_up_%s.sql/" % (frm, to),
            lambda: "20240101_%s_up_%s.sql" % (frm, to),
            lambda: "20240101_%s_down_%s.sql" % (frm, to),
            lambda: "20240101_%s_up_%s.py" % (frm, to),
            lambda: "20240101_%s_UP_%s.sql" % (frm, to),
            lambda: ".20240101_%s_up_%s.sql" % (frm, to),
            lambda: "20240101_%s_up_%s.sql" % (frm * 200, to),
            lambda: "20240101_%s_up_%s.sql" % (
                "a" * r.choice([119, 120, 121, 237, 238, 300, 100000]),
                "b" * r.choice([1, 119, 120, 121])),
            lambda: "README.txt", lambda: "20240101_initial_up_r1.sql\u0001",
            lambda: "20240101_initial_up_r1.sql" + self.odd_string()[:20],
        ])()

    def dir_value(self, plan):
        r = self.r
        tag = r.choice(list(self.folders))
        path = self.folders[tag][0]
        return r.choice([
            lambda: path, lambda: path + "/", lambda: path + "/.",
            lambda: path + "/../" + Path(path).name,
            lambda: path + "//", lambda: str(Path(path).parent), lambda: "/", lambda: "/etc",
            lambda: "relative/path", lambda: "", lambda: "/nonexistent/" + uuid.uuid4().hex,
            lambda: path + "/" + "a" * r.choice([100, MAX_DIR - len(path) - 1, MAX_DIR - len(path),
                                                 MAX_DIR, 70000]),
            lambda: "/" + "./" * r.choice([10, 2000, 3000]) + path.lstrip("/"),
            lambda: path + "/README.txt", lambda: path + "/20240101_initial_up_r1.sql",
            lambda: self.odd_string(),
        ])()


# ---- mutations ------------------------------------------------------------

def paths_of(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths_of(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths_of(v, prefix + (i,))


def set_at(doc, path, value):
    if not path:
        return value
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return doc


def mutate(g, plan):
    """One mutation of a plan (a dict or anything): returns a document."""
    r = g.r
    steps = plan.get("steps") if isinstance(plan, dict) else None
    steps = steps if isinstance(steps, list) else None
    ops = []

    if isinstance(plan, dict):
        def drop_key():
            if plan:
                del plan[r.choice(list(plan))]
            return plan

        def add_key():
            plan[g.key()] = g.value()
            return plan

        def duplicate_key():
            # jsonb keeps the last of duplicate keys: put one first or last
            k = r.choice(["format", "track", "dir", "from", "to", "direction", "steps"])
            text = dumps(plan)
            extra = "%s: %s" % (json.dumps(k), dumps(g.value()))
            if r.random() < 0.5 or text == "{}":
                return Raw("{" + extra + ("," + text[1:] if text != "{}" else "}"))
            return Raw(text[:-1] + ", " + extra + "}")

        def set_top():
            k = r.choice(["format", "track", "dir", "from", "to", "direction", "steps"])
            plan[k] = {
                "format": lambda: r.choice([2, 0, "1", 1.0, Raw("1.0"), Raw("1e0"), None,
                                            Raw("1.000000000000000000001"), [1]]),
                "track": lambda: r.choice(TRACKS + [g.odd_string(), "t" * MAX_NAME,
                                                    "t" * (MAX_NAME + 1)]),
                "dir": lambda: g.dir_value(plan),
                "from": lambda: r.choice(REVISIONS + [g.odd_string()]),
                "to": lambda: r.choice(REVISIONS + [g.odd_string()]),
                "direction": lambda: r.choice(["up", "down", "none", "auto", "stamp", "UP", ""]),
                "steps": lambda: r.choice([[], {}, None, "[]", [[]], [None]]),
            }[k]()
            return plan

        def none_plan():
            plan["direction"] = "none"
            if r.random() < 0.5:
                plan["steps"] = []
            rev = r.choice(REVISIONS)
            plan["from"] = rev
            plan["to"] = rev if r.random() < 0.7 else r.choice(REVISIONS)
            return plan

        def wrong_type_anywhere():
            path = r.choice(list(paths_of(plan)))
            return set_at(plan, path, g.value())

        def string_anywhere():
            paths = [p for p in paths_of(plan) if p]
            return set_at(plan, r.choice(paths), g.odd_string()) if paths else plan

        def extra_step_key():
            if steps:
                s = r.choice(steps)
                if isinstance(s, dict):
                    s[g.key()] = g.value()
            return plan

        ops += [drop_key, add_key, duplicate_key, set_top, set_top, none_plan,
                wrong_type_anywhere, wrong_type_anywhere, string_anywhere, extra_step_key]

    if steps is not None:
        def drop_step():
            if steps:
                del steps[r.randrange(len(steps))]
            return plan

        def duplicate_step():
            if steps:
                i = r.randrange(len(steps))
                steps.insert(i, copy.deepcopy(steps[i]))
            return plan

        def reorder_steps():
            r.shuffle(steps) if r.random() < 0.5 else steps.reverse()
            return plan

        def from_the_middle():
            if len(steps) > 1:
                k = r.randrange(1, len(steps))
                del steps[:k]
                if isinstance(steps[0], dict) and r.random() < 0.8:
                    plan["from"] = steps[0].get("from")
            return plan

        def cut_the_end():
            if len(steps) > 1:
                del steps[r.randrange(1, len(steps)):]
                if isinstance(steps[-1], dict) and r.random() < 0.8:
                    plan["to"] = steps[-1].get("to")
            return plan

        def no_steps():
            steps.clear()
            return plan

        def many_steps():
            # up to 20,000 steps and 2 MB, as text that later mutations
            # leave alone (one step changed would change every copy)
            if steps:
                text = dumps(steps)[1:-1]
                times = min(r.choice([2, 10, 100, 20000]), 20000 // len(steps),
                            (2 << 20) // max(len(text), 1))
                plan["steps"] = Raw("[" + ", ".join([text] * max(times, 1)) + "]")
            return plan

        def step_field():
            if not steps:
                return plan
            s = r.choice(steps)
            if not isinstance(s, dict):
                return plan
            k = r.choice(["file", "file", "from", "to", "direction", "sha256", "no_transaction"])
            s[k] = {
                "file": lambda: g.file_name(s),
                "from": lambda: r.choice(REVISIONS + [g.odd_string()]),
                "to": lambda: r.choice(REVISIONS + [g.odd_string()]),
                "direction": lambda: r.choice(["up", "down", "none", "auto"]),
                "sha256": g.sha,
                "no_transaction": lambda: r.choice([True, False, None, 1, "true"]),
            }[k]()
            if r.random() < 0.3:
                del s[r.choice(list(s))]
            return plan

        def step_not_object():
            if steps:
                steps[r.randrange(len(steps))] = g.value()
            return plan

        ops += [drop_step, duplicate_step, reorder_steps, from_the_middle, cut_the_end,
                no_steps, many_steps, step_field, step_field, step_field, step_not_object]

    if not ops:
        return g.random_document()
    return r.choice(ops)()


# ---- the cluster ----------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_cluster():
    c = Cluster.create("fuzz", {"restart_after_crash": "on", "fsync": "off",
                                "max_worker_processes": "16"})
    try:
        yield c.start()
    finally:
        c.destroy()


@pytest.fixture(scope="module")
def fuzz_area():
    root = Path(tempfile.mkdtemp(prefix="trek-fuzz."))
    root.chmod(0o755)
    folders = {}
    for tag, sub in (("a", "allowed/app"), ("b", "allowed/other"), ("c", "outside/app")):
        path = root / sub
        path.mkdir(parents=True)
        for p in (path.parent, path):
            p.chmod(0o755)
        files = folder_files(tag)
        for name, text in files.items():
            (path / name).write_text(text)
            (path / name).chmod(0o644)
        folders[tag] = (str(path), files)
    yield root, folders
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzz_db(fuzz_cluster, fuzz_area):
    root, folders = fuzz_area
    db = fuzz_cluster.create_database("trek_fuzz")
    with fuzz_cluster.connect(db) as admin:
        admin.execute('CREATE ROLE "%s" LOGIN' % ROLE)
        admin.execute('GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),'
                      ' trek_execute(jsonb), trek_current(text), trek_check(jsonb),'
                      ' trek_rehearse(jsonb) TO "%s"' % ROLE)
        admin.execute('GRANT EXECUTE ON PROCEDURE trek_migrate(text, text, text, text),'
                      ' trek_migrate(jsonb) TO "%s"' % ROLE)
        admin.execute('GRANT CREATE ON SCHEMA public TO "%s"' % ROLE)
        admin.execute(sql.SQL("ALTER DATABASE {} SET trek.allowed_directories = {}").format(
            sql.Identifier(db), sql.Literal(str(root / "allowed"))))
        admin.execute('ALTER ROLE "%s" SET statement_timeout = \'30s\'' % ROLE)
        admin.execute("CREATE TABLE fz_log (id bigserial PRIMARY KEY, tag text NOT NULL,"
                      " file text NOT NULL)")
        admin.execute('ALTER TABLE fz_log OWNER TO "%s"' % ROLE)
    yield db
    wait_for(fuzz_cluster.ready, 60, "the fuzz cluster")
    fuzz_cluster.drop_database(db)


def connect(cluster, db, role=None):
    info = cluster.conninfo(db)
    if role:
        info["user"] = role
    return psycopg.connect(**info, autocommit=True)


class Witness:
    """A session held open across the cases: a crashed backend makes the
    postmaster end every session (and pg_postmaster_start_time() stays as
    it was), a restart changes the start time."""

    def __init__(self, cluster):
        self.conn = cluster.connect()
        self.started = self.conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]

    def survived(self):
        try:
            now = self.conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        except psycopg.OperationalError:
            return False
        finally:
            self.conn.close()
        return now == self.started


def crash_lines(log):
    return [line for line in log.splitlines()
            if "terminated by signal" in line or "PANIC" in line or "TRAP:" in line]


# ---- the known crash ------------------------------------------------------

def test_stale_plan_without_steps_is_an_error(fuzz_cluster, fuzz_db, fuzz_area):
    """A plan of direction "none" without steps whose revision is not the
    track's, passed to CALL trek_migrate(plan) by a role with EXECUTE: the
    procedure looked for a step to continue at past the end of the empty
    steps array, which took the whole server down (SIGSEGV) when that
    memory held other data.  It is a stale plan."""
    root, folders = fuzz_area
    path = folders["a"][0]
    witness = Witness(fuzz_cluster)
    log_before = len(fuzz_cluster.log_text())
    with connect(fuzz_cluster, fuzz_db, ROLE) as conn:
        conn.execute("CALL trek_migrate(%s, 'r1', track => 'stale_none')", (path,))
    for rev in ("initial", "r2", "p1", "initial"):
        plan = {"format": 1, "track": "stale_none", "dir": path, "from": rev,
                "to": rev, "direction": "none", "steps": []}
        # a new session whose memory held other data before, as when the
        # server crashed: the bytes past the array were taken for a pointer
        with connect(fuzz_cluster, fuzz_db, ROLE) as conn:
            conn.execute("SELECT length(string_agg(repeat('\\xff', 10), ','))"
                         " FROM generate_series(1, 100)")
            with pytest.raises(psycopg.Error) as e:
                conn.execute("CALL trek_migrate(%s::jsonb)", (json.dumps(plan),))
            assert not conn.broken, "the server lost the session: %s" % e.value
            assert e.value.sqlstate == "55000", e.value
            assert str(e.value).startswith(
                'plan is stale: track "stale_none" is at revision "r1", not "%s"' % rev)
    with connect(fuzz_cluster, fuzz_db, ROLE) as conn:
        # the plan at the track's own revision is nothing to do
        plan = {"format": 1, "track": "stale_none", "dir": path, "from": "r1",
                "to": "r1", "direction": "none", "steps": []}
        conn.execute("CALL trek_migrate(%s::jsonb)", (json.dumps(plan),))
        assert conn.execute("SELECT trek_current('stale_none')").fetchone()[0] == "r1"
    with connect(fuzz_cluster, fuzz_db) as admin:
        assert admin.execute("SELECT count(*) FROM trek.runs WHERE track = 'stale_none'"
                             " AND (state = 'running' OR steps_planned = 0)").fetchone()[0] == 0
    assert crash_lines(fuzz_cluster.log_text()[log_before:]) == []
    assert witness.survived(), "the server restarted"


# ---- the bounds -----------------------------------------------------------

def test_plan_bounds(fuzz_cluster, fuzz_db, fuzz_area):
    """Every string a plan carries is bounded, and so are its steps and its
    size: a forged plan over a bound is refused before anything is written,
    also not a row of trek.runs."""
    root, folders = fuzz_area
    path = folders["a"][0]
    with connect(fuzz_cluster, fuzz_db) as admin:
        good = admin.execute("SELECT trek_plan(%s, 'r2', track => 'bounds')",
                             (path,)).fetchone()[0]
        runs_before = admin.execute("SELECT count(*) FROM trek.runs").fetchone()[0]
    long_rev = "r" * 119         # a file name of 9 + 119 + 4 + 120 + 4 = 256 bytes
    cases = [
        (["track"], "t" * 256, 'Key "track" has 256 bytes, more than the limit of 255.'),
        (["dir"], "/" + "d" * MAX_DIR, 'Key "dir" has 4096 bytes, more than the limit of 4095.'),
        (["from"], "r" * 256, 'Key "from" has 256 bytes, more than the limit of 255.'),
        (["to"], "r" * (1 << 20), 'Key "to" has 1048576 bytes, more than the limit of 255.'),
        (["direction"], "u" * 256, 'Key "direction" has 256 bytes, more than the limit of 255.'),
        (["steps", 0, "file"], "20240101_%s_up_%s.sql" % (long_rev, long_rev + "x"),
         'In step 1, key "file" has 256 bytes, more than the limit of 255.'),
        (["steps", 1, "to"], "r" * 256,
         'In step 2, key "to" has 256 bytes, more than the limit of 255.'),
        (["steps", 1, "sha256"], "0" * (1 << 20),
         'In step 2, key "sha256" has 1048576 bytes, more than the limit of 255.'),
        (["steps"], [0] * 500001,
         'Key "steps" has 500001 elements, more than the limit of 500000.'),
    ]
    with connect(fuzz_cluster, fuzz_db, ROLE) as conn:
        for path_, value, detail in cases:
            plan = copy.deepcopy(good)
            set_at(plan, tuple(path_), value)
            for call in ("SELECT trek_execute(%s::jsonb)", "CALL trek_migrate(%s::jsonb)"):
                with pytest.raises(psycopg.Error) as e:
                    conn.execute(call, (json.dumps(plan),))
                assert e.value.sqlstate == "22023", e.value
                assert e.value.diag.message_primary == "malformed trek plan"
                assert e.value.diag.message_detail == detail
        # the largest strings within the bounds are refused for what they are
        plan = copy.deepcopy(good)
        plan["track"] = "t" * 255
        plan["steps"][0]["file"] = "20240101_%s_up_%s.sql" % ("a" * 120, "b" * 117)
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT trek_execute(%s::jsonb)", (json.dumps(plan),))
        assert e.value.diag.message_detail == \
            'In step 1, file "%s" is not the migration file of this step.' % \
            plan["steps"][0]["file"]
        # the whole plan: at most 192 MB of jsonb, whatever it carries
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT trek_execute(jsonb_set(%s::jsonb, '{padding}',"
                         " to_jsonb(repeat('x', 192 * 1024 * 1024))))", (json.dumps(good),))
        assert e.value.sqlstate == "22023", e.value
        assert re.fullmatch(r"The plan has \d+ bytes as jsonb, more than the limit of 201326592\.",
                            e.value.diag.message_detail)
        # a track argument over the bound, for every function
        for call in ("SELECT trek_current(%s)",
                     "SELECT trek_plan('%s', 'r1', track => %%s)" % path,
                     "CALL trek_migrate('%s', 'r1', track => %%s)" % path):
            with pytest.raises(psycopg.Error) as e:
                conn.execute(call, ("t" * 256,))
            assert e.value.sqlstate == "22023", e.value
            assert e.value.diag.message_primary == "track name is too long"
        assert conn.execute("SELECT trek_current(%s)", ("t" * 255,)).fetchone()[0] == "initial"
    with connect(fuzz_cluster, fuzz_db) as admin:
        assert admin.execute("SELECT count(*) FROM trek.runs").fetchone()[0] == runs_before
        assert admin.execute("SELECT count(*) FROM trek.history WHERE track = 'bounds'"
                             " OR length(track) > 255").fetchone()[0] == 0


# ---- the fuzz test --------------------------------------------------------

MODES = ["execute", "execute", "execute_commit", "execute_rollback", "migrate", "migrate",
         "migrate_in_block", "migrate_from_do", "check", "rehearse"]


def run_case(conn, mode, text):
    """Run one document; returns None (it worked) or the psycopg.Error."""
    try:
        if mode == "execute":
            conn.execute("SELECT trek_execute(%s::jsonb)", (text,))
        elif mode in ("check", "rehearse"):
            conn.execute("SELECT count(*) FROM trek_%s(%%s::jsonb)" % mode, (text,))
        elif mode in ("execute_commit", "execute_rollback", "migrate_in_block"):
            call = ("CALL trek_migrate(%s::jsonb)" if mode == "migrate_in_block"
                    else "SELECT trek_execute(%s::jsonb)")
            conn.execute("BEGIN")
            try:
                conn.execute(call, (text,))
            finally:
                if not conn.broken:
                    conn.execute("ROLLBACK" if mode != "execute_commit" else "COMMIT")
        elif mode == "migrate":
            conn.execute("CALL trek_migrate(%s::jsonb)", (text,))
        else:
            conn.execute(sql.SQL("DO $fuzz$ BEGIN CALL trek_migrate({}::jsonb); END $fuzz$")
                         .format(sql.Literal(text)))
        return None
    except psycopg.Error as e:
        return e


def seed_from_env():
    raw = os.environ.get("TREK_FUZZ_SEED", "")
    if raw == "random":
        return random.SystemRandom().randrange(1 << 32)
    return int(raw) if raw else DEFAULT_SEED


class Fuzzer:
    """Sessions (a confined role's, a superuser's), a pool of valid plans,
    and what the cases gave."""

    def __init__(self, cluster, db, folders, seed):
        self.cluster, self.db, self.folders, self.seed = cluster, db, folders, seed
        self.rng = random.Random(seed)
        self.gen = Gen(self.rng, folders)
        self.sessions = {}
        self.pool = []
        self.outcomes = Counter()
        self.modes = Counter()
        self.bad = []               # (case, what, mode, role, document's start)

    def session(self, role):
        conn = self.sessions.get(role)
        if conn is None or conn.closed or conn.broken:
            conn = self.sessions[role] = connect(self.cluster, self.db, role)
            conn.add_notice_handler(lambda d: None)
            conn.execute("SET statement_timeout = '30s'")
        return conn

    def plan_now(self, role):
        """A valid plan from where a track is now, or None."""
        r = self.rng
        try:
            return self.session(role).execute(
                "SELECT trek_plan(%s, %s, %s, %s)",
                (self.folders[r.choice("aabc")][0], r.choice(REVISIONS + ["head"]),
                 r.choice(["auto", "up", "down"]), r.choice(TRACKS))).fetchone()[0]
        except psycopg.Error:
            return None

    def document(self):
        r = self.rng
        k = r.random()
        if k < 0.12 and self.pool:
            return copy.deepcopy(r.choice(self.pool))       # valid, maybe stale
        if k < 0.9 and self.pool:
            doc = copy.deepcopy(r.choice(self.pool))
            for _ in range(r.choice([1, 1, 1, 2, 3])):
                doc = mutate(self.gen, doc)
            return doc
        return self.gen.random_document()

    def case(self, n):
        r = self.rng
        role = ROLE if r.random() < 0.85 else None
        if r.random() < 0.2 or len(self.pool) < 5:
            plan = self.plan_now(role)
            if plan is not None:
                self.pool.append(plan)
                del self.pool[:-40]
        text = dumps(self.document(), ensure_ascii=r.random() < 0.3)
        assert len(text) < 64 << 20, "a document of %d bytes" % len(text)
        mode = r.choice(MODES)
        self.modes[mode] += 1
        err = run_case(self.session(role), mode, text)
        if err is None:
            self.outcomes["ok"] += 1
        elif self.sessions[role].broken or err.sqlstate is None:
            self.bad.append((n, "session lost: %s" % err, mode, role, text[:2000]))
            # a crash ends every session: start again with new ones
            wait_for(lambda: self.cluster.ready(self.db), 120, "the server after a crash")
            self.close()
        else:
            self.outcomes[err.sqlstate] += 1
            if err.sqlstate == "XX000":
                self.bad.append((n, "XX000: %s" % err, mode, role, text[:2000]))

    def close(self):
        for conn in self.sessions.values():
            conn.close()


def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def test_plan_fuzz(fuzz_cluster, fuzz_db, fuzz_area):
    root, folders = fuzz_area
    seed = seed_from_env()
    ncases = int(os.environ.get("TREK_FUZZ_CASES") or DEFAULT_CASES)
    print("\ntrek plan fuzz: TREK_FUZZ_SEED=%d TREK_FUZZ_CASES=%d" % (seed, ncases))
    witness = Witness(fuzz_cluster)
    log_before = len(fuzz_cluster.log_text())
    fuzzer = Fuzzer(fuzz_cluster, fuzz_db, folders, seed)

    # a generator gone wrong fails this test, not the machine
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm_size() + (4 << 30)
    resource.setrlimit(resource.RLIMIT_AS,
                       (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    t0 = time.monotonic()
    try:
        for n in range(ncases):
            fuzzer.case(n)
            if len(fuzzer.bad) >= 5:
                break
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        fuzzer.close()
    elapsed = time.monotonic() - t0

    print("trek plan fuzz: %d cases in %.1f s (seed %d); modes %s" % (
        sum(fuzzer.modes.values()), elapsed, seed, dict(fuzzer.modes)))
    print("trek plan fuzz: outcomes %s" % dict(fuzzer.outcomes.most_common()))
    log = fuzz_cluster.log_text()[log_before:]
    assert not fuzzer.bad, "seed %d: %d bad cases, the first: %r" % (
        seed, len(fuzzer.bad), fuzzer.bad[:3])
    assert crash_lines(log) == [], "seed %d: %s" % (seed, crash_lines(log)[:5])
    assert witness.survived(), "seed %d: the server restarted" % seed
    assert fuzzer.outcomes["ok"] > 0, "seed %d: no plan ran at all" % seed
    check_history(fuzz_cluster, fuzz_db, folders)


def check_history(cluster, db, folders):
    """Every track's history chains from "initial" to where the track is,
    each row a real file of the folder it names with the file's edge, and
    the migrations that ran (fz_log) are exactly the history's rows."""
    by_dir = {path: (tag, files) for tag, (path, files) in folders.items()}
    with connect(cluster, db) as conn:
        rows = conn.execute("SELECT track, from_revision, to_revision, direction, file, dir"
                            " FROM trek.history ORDER BY id").fetchall()
        logged = Counter(conn.execute("SELECT tag, file FROM fz_log").fetchall())
        tracks = {}
        for track, frm, to, direction, file, dir_ in rows:
            assert dir_ in by_dir, "history row of a folder never written: %r" % (dir_,)
            tag, files = by_dir[dir_]
            assert file in files, "history row of a file the folder lacks: %r" % (file,)
            assert parse_name(file) == (frm, to, direction), (file, frm, to, direction)
            assert tracks.get(track, "initial") == frm, \
                "track %r: a step from %r after reaching %r" % (track, frm, tracks.get(track))
            tracks[track] = to
        for track, at in tracks.items():
            assert conn.execute("SELECT trek_current(%s)", (track,)).fetchone()[0] == at
        applied = Counter((by_dir[dir_][0], file) for _, _, _, _, file, dir_ in rows)
        assert applied == logged, "history and the migrations that ran differ: %s / %s" % (
            applied - logged, logged - applied)
        print("trek plan fuzz: %d history rows on %d tracks, all consistent"
              % (len(rows), len(tracks)))
