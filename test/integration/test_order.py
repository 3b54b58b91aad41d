"""Nothing trek says depends on the order the file system lists a folder in.

Planning takes a folder's names in the order the file system lists them
(sorting 10,000 names costs about as much as listing them) and sorts only
what it needs by file name: the out edges of revisions that have several.
These tests give trek the same files in two listing orders and compare what
it says: the plans among equally short paths (also against a reference
search written here), and the errors for several heads, for several pairs
of duplicate files and for an unknown target with several close names.

ext4 lists a folder in the order of its names' hashes, the same for the
same names in any folder, so the two orders come from tmpfs (/dev/shm),
which lists entries by when they were created.
"""

import collections
import os
import random
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

SHM = Path("/dev/shm")
IS_ROOT = os.geteuid() == 0


def shm_base(shm=SHM):
    """A new folder on tmpfs (shm) that the server can read, or a skip that
    says why there is none: shm missing, not writable by the user running
    the tests (who writes the files), or closed to the server's OS user
    (postgres when the tests run as root)."""
    if not shm.is_dir():
        pytest.skip("no %s to make a second listing order on" % shm)
    if not os.access(shm, os.W_OK | os.X_OK):
        pytest.skip("%s is not writable by uid %d, who writes the migration"
                    " files" % (shm, os.geteuid()))
    if IS_ROOT and not shm.stat().st_mode & stat.S_IXOTH:
        pytest.skip("%s is closed to the server's OS user (postgres)" % shm)
    try:
        base = Path(tempfile.mkdtemp(prefix="trek-order.", dir=shm))
        base.chmod(0o755)
    except OSError as e:
        pytest.skip("cannot make a folder in %s: %s" % (shm, e))
    return base


@pytest.fixture
def two_orders():
    """two_orders({file: sql}) -> (folder, folder): the same files, created
    in opposite orders in two folders on tmpfs, whose listings differ."""
    base = shm_base()

    def make(files):
        folders = []
        for k, names in enumerate([sorted(files), sorted(files, reverse=True)]):
            path = base / ("f%d" % k)
            path.mkdir()
            path.chmod(0o755)
            for name in names:
                (path / name).write_text(files[name])
                (path / name).chmod(0o644)
            folders.append(path)
        listings = [os.listdir(p) for p in folders]
        assert listings[0] != listings[1], "tmpfs listed both folders alike"
        return folders
    yield make
    shutil.rmtree(base, ignore_errors=True)


def lattice(seed):
    """A folder of 40 revisions where many targets have several shortest
    paths: from each revision up to three random later ones, file dates
    shuffled so that file-name order is not creation or revision order."""
    rng = random.Random(seed)
    revs = ["initial"] + ["r%02d" % i for i in range(1, 40)]
    edges = set()
    for i in range(len(revs) - 1):
        edges.add((i, i + 1))
        for j in rng.sample(range(i + 1, len(revs)), min(2, len(revs) - i - 1)):
            edges.add((i, j))
    files = {}
    dates = rng.sample(range(1000), len(edges))
    for (i, j), d in zip(sorted(edges), dates):
        files["%08d_%s_up_%s.sql" % (20240000 + d, revs[i], revs[j])] = \
            "SELECT %d;\n" % d
        files["%08d_%s_down_%s.sql" % (20250000 + d, revs[j], revs[i])] = \
            "SELECT %d;\n" % d
    return files, revs


def reference_path(files, start, target, up, reverse=False):
    """Breadth-first search taking each revision's out edges in file-name
    order: the path trek promises among equally short ones (reverse: in
    the opposite order, for telling where the choice matters)."""
    out = collections.defaultdict(list)
    for name in sorted(files, reverse=reverse):
        stem = name[9:-4]
        sep = "_up_" if up else "_down_"
        if sep in stem and ("_down_" if up else "_up_") not in stem:
            frm, to = stem.rsplit(sep, 1)
            out[frm].append((name, to))
    via = {start: None}
    queue = collections.deque([start])
    while queue:
        n = queue.popleft()
        for name, to in out[n]:
            if to not in via:
                via[to] = (name, n)
                queue.append(to)
    path = []
    n = target
    while via[n] is not None:
        path.append(via[n][0])
        n = via[n][1]
    return path[::-1]


def plan_files(conn, folder, target, direction="auto"):
    plan = conn.execute("SELECT trek_plan(%s, %s, %s)",
                        (str(folder), target, direction)).fetchone()[0]
    return [s["file"] for s in plan["steps"]]


def error_of(conn, sql, folder):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, (str(folder),))
    d = e.value.diag
    return tuple((x or "").replace(str(folder), "DIR") for x in
                 (d.sqlstate, d.message_primary, d.message_detail,
                  d.message_hint))


def same_error(conn, sql, a, b):
    """The error sql gives for folder a, which must be that for folder b:
    (SQLSTATE, message, detail, hint), the folder's path written DIR."""
    error = error_of(conn, sql, a)
    assert error == error_of(conn, sql, b)
    return error


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plans_among_equal_paths_follow_file_names(cluster, database,
                                                   two_orders, seed):
    files, revs = lattice(seed)
    a, b = two_orders(files)
    with cluster.connect(database) as conn:
        conn.execute("SET client_min_messages = warning")
        ties = 0
        for target in revs[1:]:
            want = reference_path(files, "initial", target, True)
            assert plan_files(conn, a, target) == want
            assert plan_files(conn, b, target) == want
            if want != reference_path(files, "initial", target, True, True):
                ties += 1
        # and down again from the top, along down files
        conn.execute("SELECT trek_execute(trek_plan(%s, %s))", (str(a), revs[-1]))
        for target in revs[:-1]:
            want = reference_path(files, revs[-1], target, False)
            assert plan_files(conn, a, target, "down") == want
            assert plan_files(conn, b, target, "down") == want
    assert ties >= 5            # the lattice does have paths to choose among


def test_errors_name_the_same_files_in_any_order(cluster, database, two_orders):
    # twelve heads: the detail lists ten and "2 more", in the same order
    heads = {"20240101_initial_up_a.sql": "SELECT 1;\n"}
    for k in range(12):
        heads["2024020%d_a_up_h%02d.sql" % (k % 9 + 1, k)] = "SELECT 1;\n"
    a, b = two_orders(heads)
    with cluster.connect(database) as conn:
        e = same_error(conn, "SELECT trek_plan(%s, 'head')", a, b)
        assert e[1] == 'migration folder "DIR" has 12 head revisions'
        assert e[2].endswith(" and 2 more.")

        # an unknown target two edits from each head: hint in name order
        e = same_error(conn, "SELECT trek_plan(%s, 'hxx')", a, b)
        close = ["h%02d" % k for k in range(10)]
        assert e[3] == "Perhaps you meant %s." % ", ".join(
            '"%s"' % c for c in close)


def test_duplicates_reported_alike_in_any_order(cluster, database, two_orders):
    # three pairs of files that go the same way; trek names the pair whose
    # second file has the smallest name, with the first file it repeats
    files = {
        "20240101_initial_up_a.sql": "SELECT 1;\n",
        "20240105_initial_up_a.sql": "SELECT 1;\n",
        "20240102_a_up_b.sql": "SELECT 1;\n",
        "20240103_a_up_b.sql": "SELECT 1;\n",
        "20240104_a_up_b.sql": "SELECT 1;\n",
        "20240109_b_up_c.sql": "SELECT 1;\n",
        "20240110_b_up_c.sql": "SELECT 1;\n",
    }
    a, b = two_orders(files)
    with cluster.connect(database) as conn:
        e = same_error(conn, "SELECT trek_plan(%s, 'head')", a, b)
    assert e[0] == "42710"
    assert e[1] == ('migrations "20240102_a_up_b.sql" and "20240103_a_up_b.sql"'
                     ' both go up from revision "a" to "b"')


def skip_reason(shm):
    """Why shm_base(shm) skips, or None if it makes a folder."""
    try:
        base = shm_base(shm)
    except pytest.skip.Exception as e:
        return str(e)
    shutil.rmtree(base)
    return None


def test_shm_skips_say_why(tmp_path, monkeypatch):
    """Without a usable /dev/shm the order tests skip, saying why, rather
    than fail."""
    tmp_path.chmod(0o755)
    assert skip_reason(tmp_path) is None
    assert "no %s" % (tmp_path / "none") in skip_reason(tmp_path / "none")
    (tmp_path / "file").write_text("")
    assert "no %s" % (tmp_path / "file") in skip_reason(tmp_path / "file")

    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o555)
    if IS_ROOT:
        # root may write anywhere: make access(2) answer as for another user
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw:
                            False if Path(p) == closed else real(p, mode, **kw))
    assert "is not writable by uid %d" % os.geteuid() in skip_reason(closed)
    monkeypatch.undo()

    if IS_ROOT:
        closed.chmod(0o770)
        assert "closed to the server's OS user" in skip_reason(closed)

    def full(**kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tempfile, "mkdtemp", full)
    assert "cannot make a folder in %s" % tmp_path in skip_reason(tmp_path)
