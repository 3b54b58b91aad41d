"""PostgreSQL 18: trek from a folder of its own, as an image volume or a
mounted volume ships it (doc/deployment.md, "Where the folder lives").

trek is installed with `make install DESTDIR=...` into a temporary folder
(its control file's comment marked), and a server whose
extension_control_path and dynamic_library_path name that folder before the
system's ($system, $libdir: PostgreSQL 18 looks up "$libdir/..." through
dynamic_library_path too, PL/pgSQL included) finds the control file and
loads the library from there, though trek is installed in the system's
folders as well.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import PG_MAJOR, PGBIN, ROOT, Cluster

pytestmark = pytest.mark.skipif(
    PG_MAJOR < 18, reason="extension_control_path is new in PostgreSQL 18")


def pg_config(option):
    return subprocess.run([str(PGBIN / "pg_config"), option], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def volume():
    """trek installed under a folder of its own, readable by the server."""
    base = Path(tempfile.mkdtemp(prefix="trek-volume."))
    try:
        p = subprocess.run(["make", "-C", str(ROOT), "-s", "install",
                            "PG_CONFIG=%s" % (PGBIN / "pg_config"),
                            "DESTDIR=%s" % base],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        control = base / pg_config("--sharedir").lstrip("/") / "extension" / \
            "trek.control"
        text = control.read_text()
        control.write_text(text.replace("comment = '", "comment = '(volume) "))
        for dirpath, dirnames, filenames in os.walk(base):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_trek_from_its_own_folder(volume):
    share = str(volume) + pg_config("--sharedir")
    lib = str(volume) + pg_config("--pkglibdir")
    assert (Path(share) / "extension" / "trek.control").exists()
    cluster = Cluster.create("volume", {
        "shared_preload_libraries": "",
        "extension_control_path": share + ":$system",
        "dynamic_library_path": lib + ":$libdir",
    })
    try:
        cluster.start()
        with cluster.connect() as conn:
            assert conn.execute(
                "SELECT default_version, comment LIKE '(volume) %'"
                "  FROM pg_available_extensions WHERE name = 'trek'"
                ).fetchall() == [("0.3", True)]
            conn.execute("CREATE EXTENSION trek")
            assert conn.execute("SELECT trek_current()").fetchone()[0] == "initial"
            # the volume comes first; where /proc shows the backend's
            # mappings, its trek.so is the one loaded
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            if os.access("/proc/%d/maps" % pid, os.R_OK):
                mapped = {line.split()[-1] for line in
                          Path("/proc/%d/maps" % pid).read_text().splitlines()
                          if line.endswith("/trek.so")}
                assert mapped == {os.path.join(lib, "trek.so")}, mapped
            conn.execute("CALL trek_migrate(%s::jsonb, 'head')",
                         ('{"20240101_initial_up_a.sql": "CREATE TABLE a (i int);"}',))
            assert conn.execute("SELECT trek_current()").fetchone()[0] == "a"
    finally:
        cluster.destroy()
