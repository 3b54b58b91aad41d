"""Operating a track with real tools: pictures rendered by Graphviz, and a
database that asyncpg-trek migrated taken over by trek.

The dot text of trek_graph() is rendered by `dot -Tsvg` (Debian package
graphviz), and the SVG's nodes and edges are read back: every revision a
node, every file an edge labelled with its name.  The adoption test builds
the state asyncpg-trek leaves behind with asyncpg-trek's own statements
(its CREATE TABLE and INSERT, run through asyncpg in a serializable
transaction as asyncpg-trek runs them), then hands the track to trek with
the one statement README shows.
"""

import asyncio
import shutil
import subprocess
import xml.etree.ElementTree as ET

import psycopg
import pytest

from conftest import history

SVG = "{http://www.w3.org/2000/svg}"
PEOPLE = "examples/people"     # staged: the server reads a copy

# asyncpg-trek's statements (asyncpg_trek/asyncpg.py), schema "public"
ASYNCPG_TREK_CREATE = """\
CREATE SCHEMA IF NOT EXISTS "{schema}";
CREATE TABLE IF NOT EXISTS "{schema}".migrations (
    id SERIAL PRIMARY KEY,
    from_revision TEXT,
    to_revision TEXT,
    timestamp TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE INDEX IF NOT EXISTS migrations_timestamp_idx ON "{schema}".migrations(timestamp);
"""
ASYNCPG_TREK_RECORD = """\
INSERT INTO "{schema}".migrations(from_revision, to_revision)
VALUES ($1, $2)
"""

ADOPT = ("SELECT trek_stamp(%s, coalesce((SELECT to_revision FROM"
         " public.migrations ORDER BY id DESC LIMIT 1), 'initial'))")

FILES = {
    "20220410_initial_up_rev1.sql": "CREATE TABLE people (id int PRIMARY KEY, name text);\n",
    "20220410_rev1_down_initial.sql": "DROP TABLE people;\n",
    "20220411_rev1_up_rev2.sql": "INSERT INTO people VALUES (1, 'Ada');\n",
    "20220411_rev2_down_rev1.sql": "DELETE FROM people;\n",
    "20220412_rev2_up_rev3.sql": "ALTER TABLE people ADD email text;\n",
    "20220412_rev3_down_rev2.sql": "ALTER TABLE people DROP email;\n",
}


def render(dot_text):
    """SVG of dot text, as (nodes {title: text}, edges {title: label})."""
    p = subprocess.run(["dot", "-Tsvg"], input=dot_text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    root = ET.fromstring(p.stdout)
    nodes, edges = {}, {}
    for g in root.iter(SVG + "g"):
        title = g.find(SVG + "title")
        texts = " ".join(t.text or "" for t in g.iter(SVG + "text"))
        if g.get("class") == "node":
            nodes[title.text] = texts
        elif g.get("class") == "edge":
            edges.setdefault(title.text, []).append(texts)
    return nodes, edges


needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz dot is not installed")


@needs_dot
def test_dot_renders_every_revision_and_file(cluster, database, staged):
    people = staged(PEOPLE)
    with cluster.connect(database) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("SELECT trek_execute(trek_plan(%s, 'rev2'))", (str(people),))
        text = conn.execute("SELECT trek_graph(%s, 'dot')",
                            (str(people),)).fetchone()[0]
    nodes, edges = render(text)
    assert set(nodes) == {"initial", "rev1", "rev2", "rev3"}
    assert "current" in nodes["rev2"] and "head" in nodes["rev3"]
    assert "current" not in nodes["rev3"] and "head" not in nodes["rev2"]
    files = sorted(p.name for p in people.iterdir())
    labels = sorted(label for labs in edges.values() for label in labs)
    assert labels == files
    assert edges["initial->rev1"] == ["20240101_initial_up_rev1.sql"]
    assert edges["rev3->rev2"] == ["20240103_rev3_down_rev2.sql"]


@needs_dot
def test_dot_of_branches_and_awkward_names(cluster, database, make_folder):
    # revisions named like dot keywords, several heads, a track elsewhere
    folder = make_folder({
        "20240101_initial_up_node.sql": "SELECT 1;\n",
        "20240102_node_up_digraph.sql": "SELECT 1;\n",
        "20240103_node_up_edge.sql": "SELECT 1;\n",
        "20240104_edge_down_node.sql": "SELECT 1;\n",
        "20240105_initial_up_subgraph.sql": "SELECT 1;\n",
    })
    with cluster.connect(database) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("SELECT trek_stamp(%s, 'subgraph')", (str(folder),))
        text = conn.execute("SELECT trek_graph(%s, 'dot')",
                            (str(folder),)).fetchone()[0]
        again = conn.execute("SELECT trek_graph(%s, 'dot')",
                             (str(folder),)).fetchone()[0]
    assert text == again
    nodes, edges = render(text)
    assert set(nodes) == {"initial", "node", "digraph", "edge", "subgraph"}
    for head in ("digraph", "edge", "subgraph"):
        assert "head" in nodes[head]
    assert "current" in nodes["subgraph"]
    assert sum(len(v) for v in edges.values()) == 5
    assert edges["edge->node"] == ["20240104_edge_down_node.sql"]


def test_mermaid_lists_every_file(cluster, database, staged):
    people = staged(PEOPLE)
    with cluster.connect(database) as conn:
        text = conn.execute("SELECT trek_graph(%s)", (str(people),)).fetchone()[0]
    assert text.startswith("flowchart TD\n")
    for p in people.iterdir():
        assert '|"%s"|' % p.name in text


async def asyncpg_trek_migrate(cluster, dbname, folder, upto):
    """What asyncpg-trek leaves behind after migrating to revision upto:
    its table, its rows, the migrations' effects."""
    import asyncpg
    conn = await asyncpg.connect(host=cluster.host, port=cluster.port,
                                 user="postgres", database=dbname)
    try:
        async with conn.transaction(isolation="serializable"):
            await conn.execute(ASYNCPG_TREK_CREATE.format(schema="public"))
            current = "initial"
            for name in sorted(FILES):
                frm, rest = name[9:].split("_up_") if "_up_" in name else (None, None)
                if frm != current:
                    continue
                to = rest[:-4]
                await conn.execute(ASYNCPG_TREK_RECORD.format(schema="public"),
                                   frm, to)
                await conn.execute((folder.path / name).read_text())
                current = to
                if to == upto:
                    break
    finally:
        await conn.close()


def test_adopt_asyncpg_trek_database(cluster, database, make_folder):
    pytest.importorskip("asyncpg")
    folder = make_folder(FILES)
    asyncio.run(asyncpg_trek_migrate(cluster, database, folder, "rev2"))
    with cluster.connect(database) as conn:
        conn.execute("SET client_min_messages = warning")
        assert conn.execute(ADOPT, (str(folder),)).fetchone()[0] == "rev2"
        row = conn.execute("SELECT current, steps_to_head, changed_files,"
                           " missing_files FROM trek_status(%s)",
                           (str(folder),)).fetchone()
        assert row == ("rev2", 1, [], [])
        conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))", (str(folder),))
        # rev1 -> rev2 did not run again: Ada is there once, with an email column
        assert conn.execute("SELECT id, name, email FROM people").fetchall() == \
            [(1, "Ada", None)]
        assert history(conn) == [
            ("initial", "rev2", "stamp", None),
            ("rev2", "rev3", "up", "20220412_rev2_up_rev3.sql"),
        ]
        conn.execute("SELECT trek_verify(%s)", (str(folder),))
        # asyncpg-trek's table is left alone
        assert conn.execute("SELECT count(*) FROM public.migrations").fetchone()[0] == 2


def test_adopt_fresh_asyncpg_trek_database(cluster, database, make_folder):
    """asyncpg-trek created its table but never ran a migration: the same
    statement stamps "initial", and trek then runs everything."""
    folder = make_folder(FILES)
    with cluster.connect(database) as conn:
        conn.execute("CREATE TABLE public.migrations (id serial PRIMARY KEY,"
                     " from_revision text, to_revision text,"
                     " timestamp timestamp NOT NULL DEFAULT current_timestamp)")
        conn.execute("SET client_min_messages = warning")
        assert conn.execute(ADOPT, (str(folder),)).fetchone()[0] == "initial"
        conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))", (str(folder),))
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 1


def test_verify_as_a_start_up_check(cluster, database, make_folder):
    folder = make_folder(FILES)
    with cluster.connect(database) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))", (str(folder),))
        conn.execute("SELECT trek_verify(%s)", (str(folder),))
        folder.add("20220411_rev1_up_rev2.sql", "INSERT INTO people VALUES (2, 'Bob');\n")
        folder.remove("20220412_rev2_up_rev3.sql")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
            conn.execute("SELECT trek_verify(%s)", (str(folder),))
        detail = e.value.diag.message_detail
        ids = dict(conn.execute("SELECT file, id FROM trek.history").fetchall())
        assert ('File "20220411_rev1_up_rev2.sql" (history id %d) changed'
                % ids["20220411_rev1_up_rev2.sql"]) in detail
        assert ('File "20220412_rev2_up_rev3.sql" (history id %d) is no longer'
                % ids["20220412_rev2_up_rev3.sql"]) in detail
