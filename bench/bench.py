#!/usr/bin/python3
"""Benchmark trek against raw SQL and other migration tools.

Started by bench/run.sh, which installs the tools, builds trek and starts a
throwaway cluster (PGHOST, PGPORT and PGUSER point at it).  This program
generates the same migrations in every tool's own format, times each tool on
each workload from a fresh database, alternating tools within a repetition,
checks that every run really did the work, and writes Markdown tables and
the raw timings to bench/results/.

Whole-process times are wall-clock times of the client process (start, connect,
migrate, exit), measured with time.perf_counter() around subprocess.run().
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
def default_pgbin():
    """The bin folder scripts/lib.sh picks (PG_CONFIG's, else the default
    PostgreSQL major of this Debian release)."""
    lib = os.path.join(HERE, "..", "scripts", "lib.sh")
    return subprocess.run(["bash", "-c", 'source "$1" && echo "$PGBIN"', "-", lib],
                          capture_output=True, text=True, check=True).stdout.strip()


PGBIN = os.environ.get("PGBIN") or default_pgbin()
PSQL = os.path.join(PGBIN, "psql")
DBMATE = os.path.join(HERE, "node_modules", "@dbmate", "linux-x64", "bin", "dbmate")
NPM_MIGRATE = os.path.join(HERE, "node_modules", "node-pg-migrate", "bin",
                           "node-pg-migrate.js")
DB = "bench_run"

# argv strings longer than this do not fit one execve() argument (Linux's
# MAX_ARG_STRLEN is 128 KiB); beyond it the one-string limit is sent from a
# file whose statements psql joins with \; into one query string
ARG_MAX_BYTES = 120 * 1024

APPLY_TOOLS = ["one-string", "psql -1", "psql loop", "trek", "psql txn each",
               "trek_migrate", "sqitch", "dbmate", "node-pg-migrate"]
# tools that run trek, in a database with the extension
TREK_TOOLS = ("trek", "trek_migrate")
NOOP_TOOLS = ["psql SELECT 1", "trek", "sqitch", "dbmate", "node-pg-migrate"]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- migrations

def revision(i):
    return "initial" if i == 0 else "r%06d" % i


def statements(workload, i):
    """(up statements, down statements) of migration i (1-based)."""
    if workload == "ddl":
        return ([f"CREATE TABLE t_{i} (id int primary key, v text)",
                 f"INSERT INTO t_{i} VALUES (1, 'x')"],
                [f"DROP TABLE t_{i}"])
    if i == 1:
        return (["CREATE TABLE log (i int)"], ["DROP TABLE log"])
    return ([f"INSERT INTO log VALUES ({i})"], [f"DELETE FROM log WHERE i = {i}"])


def sql_text(stmts):
    return "".join(s + ";\n" for s in stmts)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def generate(work, workload, n, only_trek=False):
    """Write migrations 1..n of a workload in every tool's format (or in
    trek's alone)."""
    root = os.path.join(work, f"{workload}-{n}")
    if os.path.exists(os.path.join(root, "done")) or (
            only_trek and os.path.exists(os.path.join(root, "trek-done"))):
        return root
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    for sub in ("trek", "sqitch/deploy", "sqitch/revert", "dbmate", "npm"):
        os.makedirs(os.path.join(root, sub))
    plan = ["%syntax-version=1.0.0", "%project=bench", ""]
    everything = []
    for i in range(1, n + 1):
        up, down = statements(workload, i)
        everything += up
        text = sql_text(up)
        write(os.path.join(root, "trek",
                           f"20240101_{revision(i - 1)}_up_{revision(i)}.sql"), text)
        if only_trek:
            continue
        name = "m%06d" % i
        plan.append(f"{name} 2024-01-01T00:00:00Z Bench <bench@example.invalid>"
                    f" # migration {i}")
        # sqitch's own templates wrap each change in a transaction
        write(os.path.join(root, "sqitch", "deploy", name + ".sql"),
              f"-- Deploy bench:{name} to pg\n\nBEGIN;\n\n{text}\nCOMMIT;\n")
        write(os.path.join(root, "sqitch", "revert", name + ".sql"),
              f"-- Revert bench:{name} from pg\n\nBEGIN;\n\n{sql_text(down)}\nCOMMIT;\n")
        write(os.path.join(root, "dbmate", f"{i:010d}_{name}.sql"),
              f"-- migrate:up\n{text}\n-- migrate:down\n{sql_text(down)}")
        write(os.path.join(root, "npm", f"{i:010d}_{name}.sql"),
              f"-- Up Migration\n{text}\n-- Down Migration\n{sql_text(down)}")
    if only_trek:
        write(os.path.join(root, "trek-done"), "")
        log(f"generated {workload} N={n} for trek in {time.perf_counter() - t0:.1f} s")
        return root
    write(os.path.join(root, "sqitch", "sqitch.plan"), "\n".join(plan) + "\n")
    write(os.path.join(root, "sqitch", "sqitch.conf"),
          f'[core]\n\tengine = pg\n[engine "pg"]\n\tclient = {PSQL}\n')
    write(os.path.join(root, "all.sql"), sql_text(everything))
    # trek_migrate's limit: one session sending each migration as its own
    # transaction
    write(os.path.join(root, "all-txn.sql"), "".join(
        "BEGIN;\n" + sql_text(statements(workload, i)[0]) + "COMMIT;\n"
        for i in range(1, n + 1)))
    # the same statements as one query string: psql sends statements joined
    # by \; to the server together, in one Query message
    write(os.path.join(root, "all-1q.sql"), " \\;\n".join(everything) + ";\n")
    write(os.path.join(root, "done"), "")
    log(f"generated {workload} N={n} in {time.perf_counter() - t0:.1f} s")
    return root


# ---------------------------------------------------------------- database

def connect(dbname="postgres"):
    return psycopg.connect(dbname=dbname, autocommit=True)


def fresh_db(admin, name, trek):
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {name}")
    if trek:
        with connect(name) as c:
            c.execute("CREATE EXTENSION trek")
    admin.execute("CHECKPOINT")


def client_env(dbname):
    env = dict(os.environ)
    env["PGDATABASE"] = dbname
    env["PGOPTIONS"] = "-c client_min_messages=warning"
    host, port, user = env["PGHOST"], env["PGPORT"], env.get("PGUSER", "postgres")
    # the same Unix socket for every client
    env["DATABASE_URL"] = (f"postgres://{user}@/{dbname}"
                           f"?host={host}&port={port}")
    env["SQITCH_FULLNAME"] = "Bench"
    env["SQITCH_EMAIL"] = "bench@example.invalid"
    env["LC_ALL"] = "C"
    return env


def dbmate_url(dbname):
    env = os.environ
    return (f"postgres://{env.get('PGUSER', 'postgres')}@:{env['PGPORT']}/{dbname}"
            f"?socket={env['PGHOST']}&sslmode=disable")


def command(tool, root, dbname, noop=False):
    """argv and working directory that run tool on the folders under root."""
    psql = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    trek_dir = os.path.join(root, "trek")
    if tool == "one-string":
        path = os.path.join(root, "all.sql")
        if os.path.getsize(path) <= ARG_MAX_BYTES:
            with open(path) as f:
                return psql + ["-c", f.read()], None
        return psql + ["-f", os.path.join(root, "all-1q.sql")], None
    if tool == "psql -1":
        return psql + ["-1", "-f", os.path.join(root, "all.sql")], None
    if tool == "psql loop":
        loop = ('for f in "$1"/*.sql; do "$2" -X -q -v ON_ERROR_STOP=1 -f "$f"'
                ' || exit 1; done')
        return ["bash", "-c", loop, "loop", trek_dir, PSQL], None
    if tool == "psql SELECT 1":
        return psql + ["-c", "SELECT 1"], None
    if tool == "trek":
        return psql + ["-c", f"SELECT trek_execute(trek_plan('{trek_dir}', 'head'))"], None
    if tool == "psql txn each":
        return psql + ["-f", os.path.join(root, "all-txn.sql")], None
    if tool == "trek_migrate":
        return psql + ["-c", f"CALL trek_migrate('{trek_dir}', 'head')"], None
    if tool == "sqitch":
        return (["sqitch", "--quiet", "deploy"] + (["--log-only"] if noop == "setup" else [])
                + [f"db:pg:{dbname}"], os.path.join(root, "sqitch"))
    if tool == "dbmate":
        return [DBMATE, "--url", dbmate_url(dbname), "--migrations-dir",
                os.path.join(root, "dbmate"), "--no-dump-schema", "migrate"], None
    if tool == "node-pg-migrate":
        return (["node", NPM_MIGRATE, "up", "-m", os.path.join(root, "npm"),
                 "--no-verbose"] + (["--fake"] if noop == "setup" else []), None)
    raise ValueError(tool)


def run_timed(tool, root, dbname, noop=False):
    argv, cwd = command(tool, root, dbname, noop)
    t0 = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, env=client_env(dbname),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{tool} failed (exit {p.returncode}):\n"
                           + p.stderr.decode(errors="replace")[-3000:])
    return elapsed


def check_applied(workload, n, dbname):
    """Fail loudly if a run did not apply every migration."""
    with connect(dbname) as c:
        if workload == "ddl":
            got = c.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r'"
                            " AND relname ~ '^t_[0-9]+$'").fetchone()[0]
            rows = c.execute(f"SELECT count(*) FROM t_{n}").fetchone()[0]
            ok = got == n and rows == 1
        else:
            got = c.execute("SELECT count(*) FROM log").fetchone()[0]
            ok = got == n - 1
    if not ok:
        raise RuntimeError(f"{workload} N={n}: the run left {got} tables/rows")


# ---------------------------------------------------------------- statistics

def summary(times):
    return {"median": statistics.median(times), "min": min(times),
            "max": max(times), "runs": len(times), "times": times}


class Budget:
    """Fewer repetitions for cells that would take too long (see --budget)."""

    def __init__(self, reps, budget):
        self.reps, self.budget = reps, budget
        self.per_item = {}

    def reps_for(self, key, n):
        if key not in self.per_item:
            return self.reps
        estimate = self.per_item[key] * n
        if estimate > 2 * self.budget:
            return 0
        return max(1, min(self.reps, int(self.budget // estimate)))

    def learn(self, key, n, median):
        self.per_item[key] = median / n

    def estimate(self, key, n):
        return self.per_item.get(key, 0) * n


# ---------------------------------------------------------------- workloads

def bench_apply(args, admin, workload, n, budget, results):
    root = generate(args.work, workload, n)
    tools = [t for t in APPLY_TOOLS if t in args.tools or t in ("one-string",)]
    reps = {t: budget.reps_for((workload, t), n) for t in tools}
    times = {t: [] for t in tools}
    for t in tools:
        if reps[t] == 0:
            log(f"{workload} N={n}: skipping {t} (about "
                f"{budget.estimate((workload, t), n):.0f} s a run)")
    for rep in range(max(reps.values())):
        # alternate: each repetition starts with another tool
        order = tools[rep % len(tools):] + tools[:rep % len(tools)]
        for t in order:
            if rep >= reps[t]:
                continue
            fresh_db(admin, DB, t in TREK_TOOLS)
            elapsed = run_timed(t, root, DB)
            check_applied(workload, n, DB)
            times[t].append(elapsed)
            log(f"{workload} N={n} run {rep + 1}: {t} {elapsed:.3f} s")
    admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    cell = {}
    for t in tools:
        if times[t]:
            cell[t] = summary(times[t])
            budget.learn((workload, t), n, cell[t]["median"])
        else:
            cell[t] = {"skipped": True,
                       "estimate": budget.estimate((workload, t), n)}
    results.setdefault(workload, {})[str(n)] = cell


def migration_opens(conn, trek_dir, stmt):
    """How many files inside trek_dir the backend opens while running stmt
    (strace on the backend), or None without strace."""
    if shutil.which("strace") is None:
        return None
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    out = os.path.join(os.path.dirname(trek_dir), "strace.out")
    tracer = subprocess.Popen(["strace", "-qq", "-e", "trace=open,openat,openat2",
                               "-p", str(pid), "-o", out],
                              stderr=subprocess.DEVNULL)
    time.sleep(0.5)			# strace attaches asynchronously
    conn.execute(stmt)
    time.sleep(0.2)
    if tracer.poll() is not None:	# could not attach (no ptrace here)
        log("strace could not attach to the backend; not counting opened files")
        return None
    tracer.send_signal(signal.SIGINT)
    tracer.wait()
    opens = dirs = 0
    with open(out) as f:
        for line in f:
            if f'"{trek_dir}/' in line:
                opens += 1
            elif f'"{trek_dir}"' in line:
                dirs += 1
    if dirs == 0:
        log("strace saw no open of the migration folder; not counting")
        return None
    return {"files": opens, "folder": dirs}


def bench_noop(args, admin, n, results):
    root = generate(args.work, "overhead", n)
    trek_dir = os.path.join(root, "trek")
    tools = [t for t in NOOP_TOOLS if t in args.tools or t == "psql SELECT 1"]
    dbs = {}
    for t in tools:
        dbs[t] = "bench_noop_" + t.split()[0].replace("-", "_")
        fresh_db(admin, dbs[t], t == "trek")
        if t != "psql SELECT 1":
            # reach head; sqitch and node-pg-migrate only record it
            elapsed = run_timed(t, root, dbs[t], noop="setup")
            log(f"noop N={n}: {t} at head after {elapsed:.1f} s")
    admin.execute("CHECKPOINT")
    times = {t: [] for t in tools}
    for rep in range(args.noop_reps):
        order = tools[rep % len(tools):] + tools[:rep % len(tools)]
        for t in order:
            times[t].append(run_timed(t, root, dbs[t]))
    cell = {t: summary(times[t]) for t in tools}

    # the statement alone, on an open connection
    stmt = f"SELECT trek_execute(trek_plan('{trek_dir}', 'head'))"
    with connect(dbs["trek"]) as c:
        c.execute("SET client_min_messages = warning")
        c.execute(stmt)
        st = []
        for _ in range(args.noop_reps * 4):
            t0 = time.perf_counter()
            c.execute(stmt)
            st.append(time.perf_counter() - t0)
        cell["trek statement"] = summary(st)
        cell["trek opens"] = migration_opens(c, trek_dir, stmt)
        rev = c.execute("SELECT trek_current()").fetchone()[0]
        if rev != revision(n):
            raise RuntimeError(f"trek is at {rev}, not {revision(n)}")
    for t in tools:
        admin.execute(f"DROP DATABASE IF EXISTS {dbs[t]} WITH (FORCE)")
    results.setdefault("noop", {})[str(n)] = cell


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def bench_plan(args, admin, n, results):
    root = generate(args.work, "overhead", n, only_trek=True)
    trek_dir = os.path.join(root, "trek")
    fresh_db(admin, DB, True)
    full, head, mem = [], [], []
    stmt = f"SELECT trek_plan('{trek_dir}', 'head') IS NULL"
    for rep in range(args.reps):
        with connect(DB) as c:			# a new backend: a clean high-water mark
            c.execute("SELECT trek_current()")	# loads trek
            pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
            before = vm_hwm_kb(pid)
            t0 = time.perf_counter()
            c.execute(stmt)
            full.append(time.perf_counter() - t0)
            after = vm_hwm_kb(pid)
            mem.append({"before_kb": before, "after_kb": after})
    # the same folder when the track is already at head: a history row that
    # says so (its file is none of the folder's, so the applied-file check,
    # which bench/sent.sh measures, is off here)
    with connect(DB) as c:
        c.execute("SET trek.check_applied = off")
        c.execute("INSERT INTO trek.history (track, from_revision, to_revision,"
                  " direction, file, sha256, applied_by, duration)"
                  " VALUES ('default', %s, %s, 'up', 'x', repeat('0', 64),"
                  " 'bench', '0')", (revision(n - 1), revision(n)))
        c.execute(stmt)
        for rep in range(args.reps):
            t0 = time.perf_counter()
            c.execute(stmt)
            head.append(time.perf_counter() - t0)
    admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    growth = [m["after_kb"] - m["before_kb"] for m in mem]
    results.setdefault("plan", {})[str(n)] = {
        "full": summary(full), "at head": summary(head),
        "hwm growth kb": summary(growth), "hwm kb": mem}
    log(f"plan N={n}: {statistics.median(full) * 1000:.1f} ms, "
        f"+{statistics.median(growth)} kB peak")


# ---------------------------------------------------------------- report

def machine(admin):
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    info["cores"] = os.cpu_count()
    with open("/proc/meminfo") as f:
        info["ram_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    info["os"] = platform.platform()
    info["postgres"] = admin.execute("SELECT version()").fetchone()[0]
    info["settings"] = dict(admin.execute(
        "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN"
        " ('max_locks_per_transaction', 'shared_buffers', 'fsync',"
        " 'synchronous_commit', 'wal_level', 'max_wal_size', 'full_page_writes',"
        " 'max_connections')").fetchall())

    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=60).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"
    with open(os.path.join(HERE, "node_modules", "node-pg-migrate", "package.json")) as f:
        npm_version = json.load(f)["version"]
    info["tools"] = {"psql": version([PSQL, "--version"]),
                     "sqitch": version(["sqitch", "--version"]),
                     "dbmate": version([DBMATE, "--version"]),
                     "node-pg-migrate": npm_version + " (node " + version(["node", "--version"]) + ")"}
    return info


def fmt(s):
    if s < 1:
        return f"{s * 1000:.0f} ms" if s >= 0.01 else f"{s * 1000:.2f} ms"
    return f"{s:.2f} s"


def cell_text(c):
    if c.get("skipped"):
        return f"skipped (about {fmt(c['estimate'])} a run)", ""
    runs = "" if c["runs"] > 1 else " (1 run)"
    return f"{fmt(c['median'])}{runs}", f"{fmt(c['min'])}–{fmt(c['max'])}"


def paired_ratio(c, limit):
    """Median over repetitions of the tool's time over the limit's time in
    the same repetition (runs next to each other share the machine's mood)."""
    pairs = [a / b for a, b in zip(c["times"], limit["times"])]
    if len(pairs) < 2:
        return ""
    return f"{statistics.median(pairs):.2f} ({min(pairs):.2f}–{max(pairs):.2f})"


def report(results, info, args):
    out = []
    for workload, title in (("ddl", "DDL: CREATE TABLE + INSERT per migration"),
                            ("overhead", "Overhead: one trivial INSERT per migration")):
        if workload not in results:
            continue
        out += [f"### {title}", "",
                "| N | tool | median | min–max | × one-string | × one-string,"
                " same repetition | ms a migration |",
                "|---:|---|---:|---:|---:|---:|---:|"]
        for n, cell in results[workload].items():
            limit = cell["one-string"]
            for t, c in cell.items():
                med, rng = cell_text(c)
                ratio = paired = per = ""
                if not c.get("skipped"):
                    ratio = f"{c['median'] / limit['median']:.2f}"
                    paired = paired_ratio(c, limit)
                    per = f"{c['median'] * 1000 / int(n):.2f}"
                out.append(f"| {int(n):,} | {t} | {med} | {rng} | {ratio} | {paired} | {per} |")
        out.append("")
        rows = [(n, cell) for n, cell in results[workload].items()
                if "trek_migrate" in cell and "psql txn each" in cell
                and not cell["trek_migrate"].get("skipped")
                and not cell["psql txn each"].get("skipped")]
        if rows:
            out += ["One transaction per migration: trek_migrate against psql"
                    " sending each migration as BEGIN; ...; COMMIT; in one session.", "",
                    "| N | trek_migrate | psql txn each | × psql txn each |"
                    " × psql txn each, same repetition |",
                    "|---:|---:|---:|---:|---:|"]
            for n, cell in rows:
                m, lim = cell["trek_migrate"], cell["psql txn each"]
                out.append(f"| {int(n):,} | {fmt(m['median'])} | {fmt(lim['median'])} |"
                           f" {m['median'] / lim['median']:.2f} | {paired_ratio(m, lim)} |")
            out.append("")
    if "noop" in results:
        out += ["### No-op: migrate to head when already there", "",
                "| N | tool | median | min–max | × psql SELECT 1 |",
                "|---:|---|---:|---:|---:|"]
        for n, cell in results["noop"].items():
            floor = cell["psql SELECT 1"]["median"]
            for t, c in cell.items():
                if t == "trek opens":
                    continue
                med, rng = cell_text(c)
                ratio = "" if t == "trek statement" else f"{c['median'] / floor:.2f}"
                label = ("trek, the statement alone" if t == "trek statement"
                         else t + ", whole process")
                out.append(f"| {int(n):,} | {label} | {med} | {rng} | {ratio} |")
        out.append("")
        for n, cell in results["noop"].items():
            o = cell["trek opens"]
            if o is not None:
                out.append(f"- N = {int(n):,}: during the no-op statement the backend"
                           f" opened the migration folder {o['folder']} time(s) and"
                           f" {o['files']} migration file(s) (strace -e openat).")
        out.append("")
    if "plan" in results:
        out += ["### Planning alone (trek_plan, empty database to head)", "",
                "| N revisions | plan from initial: median | min–max | µs a revision"
                " | plan at head: median | backend peak memory growth (VmHWM) |",
                "|---:|---:|---:|---:|---:|---:|"]
        for n, c in results["plan"].items():
            full = c["full"]
            mb = c["hwm growth kb"]["median"] / 1024
            out.append(f"| {int(n):,} | {fmt(full['median'])} | "
                       f"{fmt(full['min'])}–{fmt(full['max'])} | "
                       f"{full['median'] * 1e6 / int(n):.1f} | "
                       f"{fmt(c['at head']['median'])} | {mb:.1f} MiB |")
        out.append("")
    out += ["Machine: " + f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM;"
            f" {info['postgres'].split(' on ')[0]}.",
            "Settings: " + ", ".join(f"{k} = {v}" for k, v in sorted(info["settings"].items())) + ".",
            "Tools: " + "; ".join(f"{k} {v}" for k, v in info["tools"].items()) + ".",
            "Command: `bash bench/run.sh " + " ".join(args.argv) + "`", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def sizes(s):
    return [int(x) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, help="folder for generated migrations")
    ap.add_argument("--quick", action="store_true",
                    help="every workload once at N = 10 (a smoke test)")
    ap.add_argument("--ddl", type=sizes, default=[100, 1000, 10000])
    ap.add_argument("--overhead", type=sizes, default=[1000, 10000])
    ap.add_argument("--noop", type=sizes, default=[1000, 10000])
    ap.add_argument("--plan", type=sizes, default=[1000, 10000, 100000])
    ap.add_argument("--reps", type=int, default=5, help="runs per tool and N")
    ap.add_argument("--noop-reps", type=int, default=10)
    ap.add_argument("--budget", type=float, default=240,
                    help="seconds a tool may take at one N: fewer runs when"
                    " its median at the previous N says it would take longer,"
                    " none when one run would take over twice this")
    ap.add_argument("--tools", default=",".join(APPLY_TOOLS),
                    help="comma-separated tools to compare (one-string always runs)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--report", metavar="JSON",
                    help="print the tables of an earlier run's .json and exit")
    if "--report" in sys.argv:		# needs no cluster and no --work
        i = sys.argv.index("--report")
        with open(sys.argv[i + 1]) as f:
            saved = json.load(f)
        print(report(saved["results"], saved["machine"],
                     argparse.Namespace(argv=saved["argv"])))
        return
    args = ap.parse_args()
    args.argv, skip = [], False
    for a in sys.argv[1:]:		# the command line minus run.sh's own options
        if not skip and a not in ("--work",) and not a.startswith("--work="):
            args.argv.append(a)
        skip = a == "--work"
    args.tools = args.tools.split(",")
    if args.quick:
        args.ddl = args.overhead = args.noop = args.plan = [10]
        args.reps, args.noop_reps = 1, 1

    admin = connect()
    info = machine(admin)
    results = {}
    budget = Budget(args.reps, args.budget)
    started = time.time()
    for n in args.ddl:
        bench_apply(args, admin, "ddl", n, budget, results)
    for n in args.overhead:
        bench_apply(args, admin, "overhead", n, budget, results)
    for n in args.noop:
        bench_noop(args, admin, n, results)
    for n in args.plan:
        bench_plan(args, admin, n, results)
    text = report(results, info, args)
    print(text)

    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(args.out, ("quick-" if args.quick else "") + stamp)
    with open(base + ".md", "w") as f:
        f.write(text)
    with open(base + ".json", "w") as f:
        json.dump({"machine": info, "results": results, "argv": args.argv}, f, indent=1)
    log(f"done in {time.time() - started:.0f} s; results in {base}.md and .json")


if __name__ == "__main__":
    main()
