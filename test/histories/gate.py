#!/usr/bin/env python3
"""gate.py FOLDER: try trek's safety gate on a real migration history.

  (a) small tables: a fresh database, CREATE EXTENSION trek, then
      CALL trek_migrate(FOLDER, 'head') with the default settings.  From an
      empty database nothing is large, so any refusal, and any error the
      gate raises for a step that runs fine without it, is a false
      positive; after one, the steps up to the one named are applied with
      trek.hazards = off and the rest is tried again in one call.  Then the
      same one step at a time (trek_migrate(FOLDER, '+1')) in another fresh
      database, as deploying each migration onto existing small tables.
  (b) every table large: another fresh database, SET trek.large_table = 0,
      and step by step: the plan to the next revision (trek_plan(FOLDER,
      '+1')), its trek_check() rows and its trek_rehearse() rows compared
      per (step, line, relation): lock, rewrites, scans, hazard.  Then the
      step is applied with CALL trek_migrate(FOLDER, '+1'), first with the
      gate on (its refusal must match the hazards trek_check() predicted),
      then, if refused, with trek.hazards = off.

Prints every disagreement with its statement and a summary; exit status 0
only when (a) refused nothing, (b) found no disagreement and trek raised no
error.  Needs a superuser connection (PG* environment variables or
--host/--port/--user), trek installed in that server, and FOLDER readable
by the server's OS user (it is read by the server).  See README.md.
"""
import argparse
import collections
import json
import os
import re
import sys
import time

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

LOCKS = ["AccessShareLock", "RowShareLock", "RowExclusiveLock",
         "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
         "ExclusiveLock", "AccessExclusiveLock"]
HAZARDS = ("rewrite", "scan", "index build", "all rows")
REFUSAL = re.compile(r'^migration ".*" would ')

COLUMNS = ("step, file, line, statement, relation::oid AS relid, "
           "relation::text AS relation, lock, blocks, rewrites, scans, "
           "rows, bytes, hazard, advice")


def lock_rank(mode):
    return LOCKS.index(mode) if mode in LOCKS else -1


# ------------------------------------------------------------ statements


def strip_comments(text):
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", text or "", flags=re.S)


def one_line(text, limit):
    s = " ".join((text or "").split())
    if limit and len(s) > limit:
        s = s[:limit - 3] + "..."
    return s


WORD = r'(?:"[^"]*"|[A-Za-z_][A-Za-z_0-9$]*)'
NAME = r'%s(?:\s*\.\s*%s)*' % (WORD, WORD)


def statement_kind(statement):
    """A short name of what a statement does, to group disagreements:
    'CREATE INDEX', 'ALTER TABLE ADD CONSTRAINT FOREIGN KEY', 'UPDATE'..."""
    s = " ".join(strip_comments(statement).split())
    u = s.upper()
    m = re.match(r"ALTER TABLE (?:IF EXISTS )?(?:ONLY )?" + NAME + r"\s*(.*)$", s, re.I | re.S)
    if m:
        rest = m.group(1).upper()
        first = re.split(r",(?![^()]*\))", rest)[0].split()
        more = " ..." if re.search(r",(?![^()]*\))", rest) else ""
        if not first:
            return "ALTER TABLE"
        w = first
        if w[0] == "ADD":
            if len(w) > 1 and w[1] == "CONSTRAINT":
                tail = w[3:5]
                if tail and tail[0] in ("CHECK", "UNIQUE", "EXCLUDE"):
                    tail = tail[:1]
                return "ALTER TABLE ADD CONSTRAINT " + " ".join(tail) + more
            if len(w) > 1 and w[1] in ("PRIMARY", "FOREIGN"):
                return "ALTER TABLE ADD " + " ".join(w[1:3]) + more
            if len(w) > 1 and w[1] in ("CHECK", "UNIQUE", "EXCLUDE"):
                return "ALTER TABLE ADD " + w[1] + more
            return "ALTER TABLE ADD COLUMN" + more
        if w[0] == "ALTER":
            i = 2 if len(w) > 1 and w[1] == "COLUMN" else 1
            act = w[i + 1:i + 3]
            if act and act[0] in ("TYPE", "SET", "DROP", "ADD", "RESTART"):
                if act[0] == "TYPE" or (act[0] == "SET" and len(act) > 1
                                        and act[1] == "DATA"):
                    return "ALTER TABLE ALTER COLUMN TYPE" + more
                return "ALTER TABLE ALTER COLUMN " + " ".join(act) + more
            return "ALTER TABLE ALTER" + more
        if w[0] == "DROP":
            what = w[1] if len(w) > 1 and w[1] in ("COLUMN", "CONSTRAINT") else "COLUMN"
            return "ALTER TABLE DROP " + what + more
        if w[0] in ("VALIDATE", "RENAME", "ENABLE", "DISABLE", "ATTACH", "DETACH",
                    "OWNER", "INHERIT", "NO", "CLUSTER", "REPLICA"):
            return "ALTER TABLE " + " ".join(w[:2]) + more
        if w[0] == "SET":
            return "ALTER TABLE " + " ".join(w[:2]) + more
        return "ALTER TABLE " + w[0] + more
    m = re.match(r"CREATE (UNIQUE )?INDEX( CONCURRENTLY)?", u)
    if m:
        return "CREATE " + (m.group(1) or "") + "INDEX" + (m.group(2) or "")
    m = re.match(r"CREATE (?:OR REPLACE )?(?:CONSTRAINT )?(TRIGGER|FUNCTION|PROCEDURE|VIEW|"
                 r"MATERIALIZED VIEW|TABLE|TYPE|SEQUENCE|SCHEMA|EXTENSION|POLICY|RULE)", u)
    if m:
        return "CREATE " + m.group(1)
    m = re.match(r"(INSERT|UPDATE|DELETE|SELECT|WITH|DO|CALL|TRUNCATE|VACUUM|"
                 r"ANALYZE|REINDEX|CLUSTER|COMMENT|GRANT|REVOKE|LOCK|REFRESH MATERIALIZED VIEW)\b", u)
    if m:
        return m.group(1)
    return " ".join(u.split()[:2]) or "?"


def allowed_in(folder, rel):
    """The hazards a step's file accepts with its "-- trek:allow" lines
    among the comment lines it starts with (as trek reads them)."""
    out = set()
    try:
        with open(os.path.join(folder, rel), encoding="utf-8", errors="replace") as f:
            for line in f:
                t = line.strip(" \t\r\n")
                if t and not t.startswith("--"):
                    break
                m = re.match(r"--\s?trek:allow[ \t]+(.*)$", t)
                if m and t.startswith("-- trek:allow"):
                    out.add(m.group(1).strip())
    except OSError:
        pass
    return out


# ------------------------------------------------------------ connections


class Session:
    """One database's connection, reconnected when the server drops it
    (trek may be reinstalled while this runs)."""

    def __init__(self, args, dbname):
        self.args, self.dbname, self.conn = args, dbname, None
        self.settings = {}
        self.connect()

    def connect(self):
        kw = {"dbname": self.dbname, "autocommit": True}
        for k in ("host", "port", "user"):
            if getattr(self.args, k):
                kw[k] = getattr(self.args, k)
        self.conn = psycopg.connect(**kw)
        self.conn.add_notice_handler(lambda d: None)
        for k, v in self.settings.items():
            self.conn.execute(sql.SQL("SELECT set_config({}, {}, false)").format(
                sql.Literal(k), sql.Literal(v)))

    def set(self, name, value):
        self.settings[name] = value
        self.run("SELECT set_config(%s, %s, false)", (name, value))

    def run(self, query, params=None, fetch=False):
        for attempt in (1, 2):
            try:
                cur = self.conn.execute(query, params)
                if fetch:
                    cols = [d.name for d in cur.description]
                    return [dict(zip(cols, r)) for r in cur.fetchall()]
                return None
            except psycopg.OperationalError:
                if attempt == 2 or not self.conn.closed:
                    raise
                time.sleep(1)
                self.connect()

    def close(self):
        self.conn.close()


def maintenance(args):
    """A connection to the maintenance database, for CREATE/DROP DATABASE."""
    kw = {"dbname": args.maintenance_db, "autocommit": True}
    for k in ("host", "port", "user"):
        if getattr(args, k):
            kw[k] = getattr(args, k)
    return psycopg.connect(**kw)


def fresh_database(args, name):
    drop_database(args, name)
    with maintenance(args) as c:
        c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    s = Session(args, name)
    s.run("CREATE EXTENSION trek")
    if args.tool_table:
        for stmt in TOOL_TABLES.get(args.tool_table, ()):
            s.run(stmt)
    if args.format:
        s.set("trek.format", args.format)
    return s


def drop_database(args, name):
    with maintenance(args) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


TOOL_TABLES = {
    "sqlx": ["CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, "
             "installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, "
             "checksum bytea NOT NULL, execution_time bigint NOT NULL)"],
    "dbmate": ["CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)"],
    "golang-migrate": ["CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)"],
    "goose": ["CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, "
              "is_applied boolean NOT NULL, tstamp timestamp DEFAULT now())"],
    "diesel": ["CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY, "
               "run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)"],
}


# ------------------------------------------------------------ report


class Report:
    def __init__(self):
        self.errors = []            # (phase, step, sqlstate, message)
        self.false_positives = []   # (a): refusals
        self.disagreements = []     # (b)
        self.gate_mismatches = []   # (b): refusal vs prediction
        self.steps = 0
        self.statements = 0
        self.compared = 0
        self.not_rehearsable = 0
        self.unrehearsed = collections.Counter()   # hazards predicted in those
        self.unrehearsed_rows = []
        self.predicted = collections.Counter()
        self.observed = collections.Counter()
        self.refused_steps = 0
        self.small_steps = None
        self.small_by_steps = None

    def error(self, phase, step, e):
        state = getattr(e, "sqlstate", None) or "?"
        msg = str(e).strip()
        diag = getattr(e, "diag", None)
        if diag is not None and diag.message_detail:
            msg += "\nDETAIL: " + diag.message_detail
        if diag is not None and diag.context:
            msg += "\nCONTEXT: " + diag.context.strip()
        self.errors.append({"phase": phase, "step": step, "sqlstate": state, "message": msg})
        return state


def error_text(e):
    d = e.diag
    out = d.message_primary or str(e)
    if d.message_detail:
        out += "\nDETAIL: " + d.message_detail
    if d.message_hint:
        out += "\nHINT: " + d.message_hint
    return out


# ------------------------------------------------------------ (a)


def is_refusal(e):
    return e.sqlstate == "55000" and REFUSAL.match(e.diag.message_primary or "")


def failing_file(e):
    """The migration file an error names, or None."""
    text = "%s\n%s\n%s" % (e.diag.message_primary or "", e.diag.message_detail or "",
                           e.diag.context or "")
    m = re.search(r'migration "([^"]+)"', text)
    return m.group(1) if m else None


def failing_step(e):
    """The step number an error names ("step N of M"), or None."""
    text = "%s\n%s" % (e.diag.message_detail or "", e.diag.context or "")
    m = re.search(r"(?i)\bstep (\d+) of (\d+)", text)
    return int(m.group(1)) if m else None


def without_gate(s, target, args):
    s.set("trek.hazards", "off")
    try:
        s.run("CALL trek_migrate(%s, %s)", (args.folder, target))
    finally:
        s.set("trek.hazards", "refuse")


def small_tables(args, rep):
    """(a) with the whole plan to head in one call; after a refusal or an
    error of the gate, the steps up to the one it named are applied without
    the gate, and the rest is tried again in one call."""
    name = args.db + "_small"
    s = fresh_database(args, name)
    calls = 0
    while True:
        before = steps_to_head(s, args, rep, "a")
        if not before:
            break
        calls += 1
        try:
            s.run("CALL trek_migrate(%s, 'head')", (args.folder,))
            break
        except psycopg.Error as e:
            left = steps_to_head(s, args, rep, "a")
            # nothing applied: the gate, before the first step, named step k;
            # else the step after the last one applied failed
            k = (failing_step(e) or 1) if left == before else 1
            entry = {"call": "head", "step": k, "file": failing_file(e),
                     "message": error_text(e), "sqlstate": e.sqlstate}
            try:
                without_gate(s, "+%d" % k, args)
            except psycopg.Error as e2:
                # fails without the gate too: the history's own error
                rep.error("a: head, step %d without the gate" % k, None, e2)
                break
            if is_refusal(e) or steps_to_head(s, args, rep, "a") == left - k:
                rep.false_positives.append(entry)
    rep.small_steps = "%d call(s) of trek_migrate(folder, 'head')" % calls
    s.close()
    if not args.keep:
        drop_database(args, name)
    if not args.skip_small_steps:
        s = fresh_database(args, args.db + "_smallsteps")
        small_by_steps(s, args, rep)
        s.close()
        if not args.keep:
            drop_database(args, args.db + "_smallsteps")


def small_by_steps(s, args, rep):
    """(a) one step at a time, as a deployment of each new migration onto
    tables that already exist (and are small)."""
    n = 0
    while steps_to_head(s, args, rep, "a"):
        n += 1
        try:
            s.run("CALL trek_migrate(%s, '+1')", (args.folder,))
            continue
        except psycopg.Error as e:
            entry = {"call": "+1", "step": n, "file": failing_file(e),
                     "message": error_text(e), "sqlstate": e.sqlstate}
        try:
            without_gate(s, "+1", args)
        except psycopg.Error as e2:
            rep.error("a: step without the gate", n, e2)
            return
        # fine without the gate: the gate's refusal or error was wrong
        rep.false_positives.append(entry)
    rep.small_by_steps = n


def steps_to_head(s, args, rep, phase):
    try:
        r = s.run("SELECT jsonb_array_length(trek_plan(%s, 'head')->'steps') AS n",
                  (args.folder,), fetch=True)
        return r[0]["n"]
    except psycopg.Error as e:
        rep.error(phase + ": trek_plan head", None, e)
        return 0


# ------------------------------------------------------------ (b)


def keyed(rows):
    out = collections.OrderedDict()
    for r in rows:
        if r["relid"] is None:
            continue
        out.setdefault((r["line"], r["relid"]), []).append(r)
    return out


def compare_step(k, check, rehearse, rep):
    """Disagreements between trek_check() and trek_rehearse() of one step."""
    stmts = {(r["line"], r["statement"]) for r in check if r["statement"] is not None}
    rep.statements += len(stmts)
    for r in check:
        if r["hazard"]:
            rep.predicted[r["hazard"]] += 1
    for r in rehearse:
        if r["hazard"]:
            rep.observed[r["hazard"]] += 1
    if any(r["hazard"] == "not rehearsable" for r in rehearse):
        rep.not_rehearsable += 1
        for r in check:
            if r["hazard"]:
                rep.unrehearsed[r["hazard"]] += 1
                rep.unrehearsed_rows.append(r)
        return
    kc, kr = keyed(check), keyed(rehearse)
    # the strongest lock rehearse saw on each relation before each line: a
    # mode held already is not taken again, so rehearse sees another one
    held_before, strongest = {}, {}
    for r in rehearse:
        if r["relid"] is None:
            continue
        held_before.setdefault((r["line"], r["relid"]), strongest.get(r["relid"]))
        if lock_rank(r["lock"]) > lock_rank(strongest.get(r["relid"])):
            strongest[r["relid"]] = r["lock"]

    def held_at(line, relid):
        """The strongest lock rehearse saw on relid at a line before line."""
        best = None
        for r in rehearse:
            if (r["relid"] == relid and r["line"] is not None and line is not None
                    and r["line"] < line and lock_rank(r["lock"]) > lock_rank(best)):
                best = r["lock"]
        return best

    def add(kind_of, c, r, fields):
        src = c or r
        rep.disagreements.append({
            "step": k, "file": src["file"], "line": src["line"],
            "relation": src["relation"], "what": kind_of,
            "kind": statement_kind(src["statement"]),
            "fields": fields, "statement": src["statement"]})

    for key, crows in kc.items():
        rrows = kr.get(key, [])
        for i, c in enumerate(crows):
            if i >= len(rrows):
                # rehearse sees no lock already held at least as strongly
                held = held_at(c["line"], c["relid"])
                what = ("check only, lock held since line before"
                        if held and lock_rank(held) >= lock_rank(c["lock"]) else "check only")
                add(what, c, None,
                    {"lock": [c["lock"], None], "rewrites": [c["rewrites"], None],
                     "scans": [c["scans"], None]})
                continue
            r = rrows[i]
            rep.compared += 1
            diff = {}
            for f in ("lock", "rewrites", "scans", "hazard"):
                if r[f] is None and f not in ("lock", "hazard"):
                    continue        # rehearse did not watch it
                if c[f] != r[f]:
                    diff[f] = [c[f], r[f]]
            if diff:
                # check said nothing (NULL) where rehearse saw something
                if all(v[0] is None for v in diff.values()):
                    what = "not predicted"
                elif list(diff) == ["lock"] and held_before.get(key):
                    what = "differs, lock held since line before"
                else:
                    what = "differs"
                add(what, c, r, diff)
    for key, rrows in kr.items():
        extra = rrows[len(kc.get(key, [])):]
        for r in extra:
            if lock_rank(r["lock"]) > lock_rank("AccessShareLock"):
                fields = {"lock": [None, r["lock"]]}
                for f in ("rewrites", "scans"):
                    if r[f] is not None:
                        fields[f] = [None, r[f]]
                add("rehearse only", None, r, fields)


def large_tables(args, rep):
    name = args.db + "_large"
    s = fresh_database(args, name)
    s.set("trek.large_table", "0")
    total = steps_to_head(s, args, rep, "b")
    if args.max_steps:
        total = min(total, args.max_steps)
    t0 = time.time()
    for k in range(1, total + 1):
        try:
            plan = s.run("SELECT trek_plan(%s, '+1') AS p", (args.folder,), fetch=True)[0]["p"]
        except psycopg.Error as e:
            rep.error("b: trek_plan +1", k, e)
            break
        files = [st["file"] for st in plan["steps"]]
        rep.steps += 1
        check, rehearse = [], []
        try:
            check = s.run("SELECT " + COLUMNS + " FROM trek_check(%s) ORDER BY step, line",
                          (Jsonb(plan),), fetch=True)
        except psycopg.Error as e:
            rep.error("b: trek_check", k, e)
        try:
            rehearse = s.run("SELECT " + COLUMNS + " FROM trek_rehearse(%s)",
                             (Jsonb(plan),), fetch=True)
        except psycopg.Error as e:
            rep.error("b: trek_rehearse", k, e)
        for r in check + rehearse:
            r["step"] = k
        if check and rehearse:
            compare_step(k, check, rehearse, rep)
        elif check:
            rep.statements += len({(r["line"], r["statement"]) for r in check})

        # the gate: refuses exactly when a hazard is predicted and not accepted
        allowed = set()
        for f in files:
            allowed |= allowed_in(plan.get("dir") or args.folder, f)
        expect = sorted({r["hazard"] for r in check
                         if r["hazard"] in HAZARDS and r["hazard"] not in allowed})
        refused = None
        try:
            s.run("CALL trek_migrate(%s, '+1')", (args.folder,))
        except psycopg.Error as e:
            if e.sqlstate == "55000" and REFUSAL.match(e.diag.message_primary or ""):
                refused = error_text(e)
                rep.refused_steps += 1
            else:
                # not the gate's refusal: note it, and go on without the gate
                rep.error("b: trek_migrate +1 (gate on)", k, e)
                refused = False
        if check and refused is not False and bool(expect) != bool(refused):
            rep.gate_mismatches.append({"step": k, "files": files, "predicted": expect,
                                        "refusal": refused})
        if refused is not None:
            try:
                s.set("trek.hazards", "off")
                s.run("CALL trek_migrate(%s, '+1')", (args.folder,))
            except psycopg.Error as e:
                rep.error("b: trek_migrate +1 (trek.hazards = off)", k, e)
                break
            finally:
                s.set("trek.hazards", "refuse")
        if args.verbose:
            print("(b) step %d/%d %s: %d check rows, %d rehearse rows%s (%.0f s)"
                  % (k, total, ", ".join(files), len(check), len(rehearse),
                     ", refused" if refused else "", time.time() - t0), file=sys.stderr)
    s.close()
    if not args.keep:
        drop_database(args, name)


# ------------------------------------------------------------ output


def print_report(args, rep, out):
    w = lambda *a: print(*a, file=out)
    w("gate.py %s" % args.folder)
    if not args.skip_small:
        w("")
        w("(a) small tables, default settings: %s"
          % ("the gate refused or failed nothing" if not rep.false_positives else
             "%d false positive(s)" % len(rep.false_positives)))
        if rep.small_steps:
            w("    head: %s" % rep.small_steps)
        if rep.small_by_steps is not None:
            w("    step by step: %d steps" % rep.small_by_steps)
        groups = collections.OrderedDict()
        for fp in rep.false_positives:
            first = fp["message"].split("\n", 1)[0]
            groups.setdefault((fp["call"], fp["sqlstate"], first), []).append(fp)
        for (call, state, first), fps in groups.items():
            files = [f["file"] or "step %d" % f["step"] for f in fps]
            w("  FALSE POSITIVE [%s] trek_migrate(folder, '%s'), %d time(s): %s%s"
              % (state, call, len(fps), ", ".join(files[:5]),
                 ", ..." if len(fps) > 5 else ""))
            for line in fps[0]["message"].splitlines():
                w("    " + line)
    if not args.skip_large:
        w("")
        w("(b) every table large (trek.large_table = 0), step by step")
        w("    steps %d, statements %d, rows compared %d, steps not rehearsable %d"
          % (rep.steps, rep.statements, rep.compared, rep.not_rehearsable))
        w("    gate refused %d step(s) with trek.hazards = refuse" % rep.refused_steps)
        w("    hazards predicted by trek_check:   %s" % fmt_counter(rep.predicted))
        w("    hazards observed by trek_rehearse: %s" % fmt_counter(rep.observed))
        if rep.unrehearsed:
            w("    of those predicted, in steps not rehearsable: %s" % fmt_counter(rep.unrehearsed))
            for r in rep.unrehearsed_rows:
                w("      step %d %s:%s %s [%s] %s: %s" % (
                    r["step"], r["file"], r["line"], r["relation"], r["lock"], r["hazard"],
                    one_line(r["statement"], args.width)))
        w("    disagreements %d" % len(rep.disagreements))
        groups = collections.Counter((d["kind"], d["what"]) for d in rep.disagreements)
        for (kind, what), n in sorted(groups.items(), key=lambda x: (-x[1], x[0])):
            w("      %4d  %-45s %s" % (n, kind, what))
        if rep.disagreements:
            w("")
            w("  disagreements (check -> rehearse):")
        for d in rep.disagreements:
            fields = ", ".join("%s %s -> %s" % (f, v[0], v[1]) for f, v in d["fields"].items())
            w("  step %d %s:%d %s [%s] %s: %s"
              % (d["step"], d["file"], d["line"], d["relation"], d["kind"], d["what"], fields))
            w("      " + one_line(d["statement"], args.width))
        if rep.gate_mismatches:
            w("")
            w("  gate refusal not as trek_check predicted:")
            for g in rep.gate_mismatches:
                w("  step %d %s: predicted %s, %s" % (
                    g["step"], ", ".join(g["files"]), g["predicted"] or "no hazard",
                    "refused: " + one_line(g["refusal"], args.width) if g["refusal"] else "not refused"))
    w("")
    w("errors %d" % len(rep.errors))
    # the same error at many steps: once, with the steps it came at
    seen = collections.OrderedDict()
    for e in rep.errors:
        first = e["message"].split("\n", 1)[0]
        seen.setdefault((e["phase"], e["sqlstate"], first), []).append(e)
    for (phase, state, first), es in seen.items():
        steps = [str(e["step"]) for e in es if e["step"] is not None]
        w("  [%s] %s%s: %s" % (state, phase,
                               " step " + ", ".join(steps[:20]) + (" ..." if len(steps) > 20 else "")
                               if steps else "",
                               es[0]["message"].replace("\n", "\n      ")))


def fmt_counter(c):
    return ", ".join("%s %d" % kv for kv in sorted(c.items())) or "none"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", help="migration folder, as the server reads it")
    ap.add_argument("--host")
    ap.add_argument("--port")
    ap.add_argument("--user")
    ap.add_argument("--maintenance-db", default="postgres")
    ap.add_argument("--db", default="gate", help="prefix of the databases (default gate)")
    ap.add_argument("--format", help="set trek.format (golang-migrate, sqlx, ...)")
    ap.add_argument("--tool-table", choices=sorted(TOOL_TABLES),
                    help="create the tool's own empty state table first")
    ap.add_argument("--skip-small", action="store_true", help="leave out (a)")
    ap.add_argument("--skip-large", action="store_true", help="leave out (b)")
    ap.add_argument("--skip-small-steps", action="store_true",
                    help="in (a), leave out the run one step at a time")
    ap.add_argument("--max-steps", type=int, help="stop (b) after this many steps")
    ap.add_argument("--keep", action="store_true", help="leave the databases behind")
    ap.add_argument("--stop-on-error", action="store_true")
    ap.add_argument("--width", type=int, default=400,
                    help="statements shortened to this many characters (0: whole)")
    ap.add_argument("--json", help="also write the findings to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = ap.parse_args()
    args.folder = os.path.abspath(args.folder)

    rep = Report()
    if not args.skip_small:
        small_tables(args, rep)
    if not args.skip_large:
        large_tables(args, rep)
    print_report(args, rep, sys.stdout)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"folder": args.folder, "false_positives": rep.false_positives,
                       "disagreements": rep.disagreements,
                       "gate_mismatches": rep.gate_mismatches, "errors": rep.errors,
                       "steps": rep.steps, "statements": rep.statements,
                       "compared": rep.compared, "predicted": rep.predicted,
                       "observed": rep.observed, "not_rehearsable": rep.not_rehearsable,
                       "predicted_not_rehearsable": rep.unrehearsed}, f, indent=1, default=str)
    bad = rep.false_positives or rep.disagreements or rep.gate_mismatches or rep.errors
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
