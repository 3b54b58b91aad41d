"""bench/sent.py: folders sent by the client against folders on the server,
and the applied-file check against what it must read.  Run by bench/sent.sh
(which starts the cluster); prints a Markdown table of medians and of the
median of each round's ratio.

    python3 bench/sent.py WORKDIR [DDL_N] [NOOP_N] [ROUNDS]

Every ratio compares two measures of the same round, taken one after the
other in one session (BENCH_NOTES: the machine is shared and noisy).
"""

import json
import os
import statistics
import sys
import time

import psycopg

work = sys.argv[1]
ddl_n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
noop_n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 11


def chain(n, body):
    files = {}
    for i in range(1, n + 1):
        frm = "initial" if i == 1 else "r%06d" % (i - 1)
        files["20240101_%s_up_r%06d.sql" % (frm, i)] = body(i)
    return files


def write(folder, files):
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o755)
    for name, text in files.items():
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)


# the DDL workload: a table and an index per migration
ddl = chain(ddl_n, lambda i: "CREATE TABLE t%d (id int PRIMARY KEY, v text);\n"
                             "CREATE INDEX ON t%d (v);\n" % (i, i))
# the overhead workload of the no-op: trivial migrations
noop = chain(noop_n, lambda i: "CREATE TABLE log (i int);\n" if i == 1
             else "INSERT INTO log VALUES (%d);\n" % i)
ddl_dir, noop_dir = os.path.join(work, "ddl"), os.path.join(work, "noop")
if ddl_n:
    write(ddl_dir, ddl)
write(noop_dir, noop)
ddl_json, noop_json = json.dumps(ddl), json.dumps(noop)

admin = psycopg.connect(dbname="postgres", autocommit=True)


def fresh(name):
    admin.execute("DROP DATABASE IF EXISTS %s" % name)
    admin.execute("CREATE DATABASE %s" % name)
    conn = psycopg.connect(dbname=name, autocommit=True)
    conn.execute("CREATE EXTENSION trek")
    conn.execute("SET client_min_messages = warning")
    return conn


def timed(conn, sql, params=None):
    start = time.perf_counter()
    conn.execute(sql, params).fetchall() if sql.lstrip().startswith("SELECT") \
        else conn.execute(sql, params)
    return time.perf_counter() - start


DDL = {
    "execute, server folder": ("SELECT trek_execute(trek_plan(%s, 'head'))", ddl_dir),
    "execute, sent folder": ("SELECT trek_execute(trek_plan(%s::jsonb, 'head'))", ddl_json),
    "migrate, server folder": ("CALL trek_migrate(%s, 'head')", ddl_dir),
    "migrate, sent folder": ("CALL trek_migrate(%s::jsonb, 'head')", ddl_json),
}

noop_conn = fresh("bench_sent_noop")
noop_conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))", (noop_dir,))
READ_ALL = ("SELECT sum(length(pg_read_binary_file(%s || '/' || f)))"
            "  FROM pg_ls_dir(%s) AS f")
NOOP = {
    "jsonb_object_keys of the sent folder":
        ("SELECT count(*) FROM jsonb_object_keys(%s::jsonb)", (noop_json,), None),
    "the check in SQL: the jsonb's texts hashed and joined with the history":
        ("SELECT count(*) FROM jsonb_each_text(%s::jsonb) AS j"
         "  JOIN trek.history AS h ON h.file = j.key"
         " WHERE h.sha256 = encode(sha256(convert_to(j.value, 'UTF8')), 'hex')",
         (noop_json,), None),
    "no-op, sent folder, check on":
        ("SELECT trek_execute(trek_plan(%s::jsonb, 'head'))", (noop_json,), "on"),
    "no-op, sent folder, check off":
        ("SELECT trek_execute(trek_plan(%s::jsonb, 'head'))", (noop_json,), "off"),
    "pg_ls_dir of the server folder":
        ("SELECT count(*) FROM pg_ls_dir(%s)", (noop_dir,), None),
    "reading every file of the server folder":
        (READ_ALL, (noop_dir, noop_dir), None),
    "no-op, server folder, check on":
        ("SELECT trek_execute(trek_plan(%s, 'head'))", (noop_dir,), "on"),
    "no-op, server folder, check off":
        ("SELECT trek_execute(trek_plan(%s, 'head'))", (noop_dir,), "off"),
}

if ddl_n == 0:                  # DDL_N 0: the no-op and memory parts only
    DDL = {}
times = {k: [] for k in list(DDL) + list(NOOP)}
for r in range(rounds):
    order = list(DDL) if r % 2 == 0 else list(reversed(DDL))
    for k in order:
        sql, param = DDL[k]
        conn = fresh("bench_sent_ddl")
        times[k].append(timed(conn, sql, (param,)))
        conn.close()
    order = list(NOOP) if r % 2 == 0 else list(reversed(NOOP))
    # the databases made and dropped above invalidate the session's caches
    noop_conn.execute("SELECT trek_current()").fetchall()
    for k in order:
        sql, params, check = NOOP[k]
        if check:
            noop_conn.execute("SET trek.check_applied = %s" % check)
        times[k].append(timed(noop_conn, sql, params))
    print("round %d of %d done" % (r + 1, rounds), file=sys.stderr)

RATIOS = [
    ("execute, sent folder", "execute, server folder"),
    ("migrate, sent folder", "migrate, server folder"),
    ("no-op, sent folder, check on", "jsonb_object_keys of the sent folder"),
    ("no-op, sent folder, check on",
     "the check in SQL: the jsonb's texts hashed and joined with the history"),
    ("no-op, sent folder, check off", "jsonb_object_keys of the sent folder"),
    ("no-op, server folder, check off", "pg_ls_dir of the server folder"),
    ("no-op, server folder, check on", "reading every file of the server folder"),
]
print("| measure | median (ms) |")
print("|---|---:|")
for k, v in times.items():
    n = ddl_n if k in DDL else noop_n
    print("| %s (N=%d) | %.1f |" % (k, n, statistics.median(v) * 1000))
print()
print("| ratio (median of the rounds' ratios) | value | rounds |")
print("|---|---:|---|")
for a, b in RATIOS:
    if not times.get(a):
        continue
    rs = [x / y for x, y in zip(times[a], times[b])]
    print("| %s ÷ %s | %.2f | %s |" % (a, b, statistics.median(rs),
                                       ", ".join("%.2f" % x for x in rs)))

# ---- memory: a 100 MB sent folder (1,000 files of 100 kB) ----
big = chain(1000, lambda i: "-- " + "x" * 99990 + "\nSELECT 1;\n")
big_json = json.dumps(big)
size = sum(len(v) for v in big.values())


def peak_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])


MEMORY = [
    ("SELECT count(*) FROM jsonb_object_keys(%s::jsonb)", "parsing the jsonb alone"),
    ("CALL trek_migrate(%s::jsonb, 'head')", "CALL trek_migrate(folder jsonb, 'head')"),
    ("SELECT trek_execute(trek_plan(%s::jsonb, 'head'))", "trek_execute(trek_plan(folder jsonb, 'head'))"),
    ("SELECT length(trek_plan(%s::jsonb, 'head')::text)", "trek_plan(folder jsonb, 'head'), the plan sent back"),
]
print()
print("| 100 MB sent folder (%.1f MB of text) | peak growth of the backend (MB) | ÷ folder |" % (size / 1e6))
print("|---|---:|---:|")
for sql, what in MEMORY:
    conn = fresh("bench_sent_mem")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    before = peak_kb(pid)
    conn.execute(sql, (big_json,))
    grown = (peak_kb(pid) - before) * 1024
    print("| %s | %.0f | %.2f |" % (what, grown / 1e6, grown / size))
    conn.close()
