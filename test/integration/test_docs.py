"""Every example of README.md and doc/*.md runs, and every link leads somewhere.

A fenced sql, sh or python block runs against a throwaway database unless
the HTML comment right above it says `<!-- not run: REASON -->`.  A comment
`<!-- example: scene=NAME role=ROLE fails=SQLSTATE -->` puts the block in a
scene (the blocks of a scene run in order against one database; default:
one scene per file), runs an sql block as ROLE, and expects it to fail with
SQLSTATE.  With `file=NAME` the block is the content of a migration file:
it is written into the scene's folder as NAME, and `CALL trek_migrate(dir,
'head')` must bring the database to the revision NAME leads to.  Blocks of other languages must be marked `not run`; fences
without a language are output and never run.  doc/development.md describes
the convention.

The path /srv/app/migrations becomes a folder the server can read, and the
name app (database and role) a name of this test's own.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import PGBIN, ROOT

DOCS = [ROOT / "README.md"] + sorted((ROOT / "doc").glob("*.md"))
RUNNABLE = {"sql", "sh", "python"}
SERVER_PATH = "/srv/app/migrations"
# scenes that start from nothing: no extension, no role, no folder
EMPTY_SCENES = {"first-app"}

FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(example|not run):(.*?)-->\s*$")


class Block:
    def __init__(self, doc, line, lang, text, marker):
        self.doc, self.line, self.lang, self.text = doc, line, lang, text
        self.kind, self.args = marker if marker else (None, "")

    @property
    def where(self):
        return "%s:%d" % (self.doc.relative_to(ROOT), self.line)

    def options(self):
        opts = {}
        for item in self.args.split():
            key, _, value = item.partition("=")
            assert key in ("scene", "role", "fails", "file") and value, \
                "%s: bad example option %r" % (self.where, item)
            opts[key] = value
        return opts


def blocks(doc):
    """The fenced blocks of a Markdown file, each with the marker above it."""
    lines = doc.read_text().split("\n")
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        assert j < len(lines), "%s:%d: unclosed fence" % (doc, start + 1)
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mm = MARKER.match(lines[k]) if k >= 0 else None
        marker = (mm.group(1), mm.group(2).strip()) if mm else None
        found.append(Block(doc, start + 1, lang, "\n".join(lines[i + 1:j]) + "\n",
                           marker))
        i = j + 1
    return found


ALL = [b for d in DOCS for b in blocks(d)]


def test_every_block_is_run_or_says_why():
    bad = []
    for b in ALL:
        if b.kind == "not run":
            if not b.args:
                bad.append("%s: `not run` needs a reason" % b.where)
        elif b.lang and b.lang not in RUNNABLE:
            bad.append("%s: a %s block cannot run; mark it <!-- not run: why -->"
                       % (b.where, b.lang))
        elif b.kind == "example" and not b.lang:
            bad.append("%s: an output block cannot be an example" % b.where)
    assert not bad, "\n".join(bad)


def scenes():
    """{(doc, scene): [blocks in order]} of the blocks that run."""
    out = {}
    for b in ALL:
        if b.lang in RUNNABLE and b.kind != "not run":
            scene = b.options().get("scene", "default")
            out.setdefault((b.doc.relative_to(ROOT).as_posix(), scene), []).append(b)
    return out


SCENES = scenes()


def test_examples_exist():
    assert sum(len(v) for v in SCENES.values()) >= 15


@pytest.fixture
def scene_env(cluster, folder_root):
    """A database and a folder for one scene; the name stands for `app`."""
    name = "trek_docs_%s" % uuid.uuid4().hex[:8]
    base = Path(tempfile.mkdtemp(dir=folder_root))
    base.chmod(0o755)
    env = dict(os.environ, PGDATABASE=name, PATH="%s:%s" % (PGBIN, os.environ["PATH"]))
    env.pop("PSQLRC", None)
    yield name, base / "migrations", env
    cluster.drop_database(name)
    cluster.query('DROP ROLE IF EXISTS "%s"' % name)
    shutil.rmtree(base, ignore_errors=True)


def prepare(cluster, scene, name, folder):
    cluster.query('CREATE DATABASE "%s"' % name)
    if scene in EMPTY_SCENES:
        return
    cluster.query("CREATE EXTENSION trek", dbname=name)
    cluster.query('CREATE ROLE "%s" LOGIN' % name)
    shutil.copytree(ROOT / "examples" / "people", folder)
    for p in [folder, *folder.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def rewrite(text, name, folder):
    text = text.replace(SERVER_PATH, str(folder))
    return re.sub(r"\bapp\b", name, text)


def migration_file(b, name, folder):
    """The psql script that applies the migration file a block shows."""
    opts = b.options()
    fname = opts["file"]
    m = re.match(r"^[0-9]{8}_\w+?_(up|down)_(\w+)\.(sql|py)$", fname)
    assert m, "%s: %r is not a migration file name" % (b.where, fname)
    path = folder / fname
    path.write_text(b.text)
    path.chmod(0o644)
    script = ""
    if fname.endswith(".py"):
        script += "CREATE EXTENSION IF NOT EXISTS plpython3u;\n"
    script += ("CALL trek_migrate('%s', 'head');\n"
               "DO $$ BEGIN IF trek_current() <> '%s' THEN\n"
               "  RAISE EXCEPTION 'at %%, not at %s', trek_current();\n"
               "END IF; END $$;\n" % (folder, m.group(2), m.group(2)))
    return script


def run_block(b, name, folder, env, cwd):
    text = rewrite(b.text, name, folder)
    opts = b.options()
    if "file" in opts:
        text = migration_file(b, name, folder)
    if b.lang == "sql" or "file" in opts:
        args = [str(PGBIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1",
                "-v", "VERBOSITY=verbose", "-d", name]
        if "role" in opts:
            args += ["-U", rewrite(opts["role"], name, folder)]
        p = subprocess.run(args, input=text, capture_output=True, text=True,
                           env=env, cwd=cwd, timeout=300)
    elif b.lang == "sh":
        p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", "umask 022\n" + text],
                           capture_output=True, text=True, env=env, cwd=cwd,
                           timeout=300)
    else:
        p = subprocess.run([sys.executable, "-c", text], capture_output=True,
                           text=True, env=env, cwd=cwd, timeout=300)
    out = "%s\n--- stdout\n%s--- stderr\n%s" % (b.where, p.stdout, p.stderr)
    if "fails" in opts:
        assert p.returncode != 0, "expected to fail:\n" + out
        states = re.findall(r"^ERROR:  ([0-9A-Z]{5}):", p.stderr, re.M)
        assert states and states[-1] == opts["fails"], out
    else:
        assert p.returncode == 0, out
    return out


@pytest.mark.parametrize("key", sorted(SCENES), ids=lambda k: "%s:%s" % k)
def test_examples(cluster, scene_env, key, tmp_path):
    name, folder, env = scene_env
    prepare(cluster, key[1], name, folder)
    tmp_path.chmod(0o755)
    for b in SCENES[key]:
        print(run_block(b, name, folder, env, tmp_path))


def slug(heading):
    """GitHub's anchor for a heading."""
    s = re.sub(r"[`*]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(doc):
    out, fence = set(), False
    for line in doc.read_text().split("\n"):
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"^#{1,6} ", line):
            out.add(slug(line.lstrip("#")))
    return out


def test_links():
    dead = []
    for doc in DOCS:
        text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                dead.append("%s: %s (no such file)" % (doc.relative_to(ROOT), target))
            elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
                dead.append("%s: %s (no such heading)" % (doc.relative_to(ROOT), target))
    assert not dead, "\n".join(dead)
