"""Other tools' folders reach the schema their own tool reaches.

For each tool, a folder written for this test (test/fixtures/tools/<tool>,
using the rules of that tool: its markers, sections, wrappers, version
order, repeatables) is applied three ways by test/histories/compare.py:
the way the tool itself applies it (its transactions emulated through
libpq's simple query protocol), by trek from the server folder, and by
trek from the folder sent as jsonb.  The schemas (pg_dump) must be equal,
and again after trek took the database down to "initial" and up again; no
trek call may fail.  The same script replays real public histories by hand
(test/histories/README.md).
"""

import os
import subprocess
import sys

import pytest

from conftest import PGBIN, ROOT

TOOLS = ["golang-migrate", "flyway", "dbmate", "goose", "sqlx", "diesel"]


@pytest.mark.parametrize("tool", TOOLS)
def test_same_schema_as_the_tool(cluster, staged, tool):
    folder = staged("test/fixtures/tools/%s" % tool)
    env = dict(os.environ, PATH="%s:%s" % (PGBIN, os.environ["PATH"]))
    args = [sys.executable, str(ROOT / "test/histories/compare.py"), tool,
            str(folder), "--db", "fmt_%s" % tool.replace("-", "_")]
    if tool == "sqlx":
        # its up and down pairs are named as golang-migrate names them
        args += ["--format", "sqlx"]
    p = subprocess.run(args, capture_output=True, text=True, env=env,
                       timeout=300)
    out = p.stdout + p.stderr
    print(out)
    assert p.returncode == 0, out
    assert "schema A = B:" in out and "SERVER CRASHED" not in out
    assert "down to initial ok" in out, out
