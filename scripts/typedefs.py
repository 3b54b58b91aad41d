#!/usr/bin/env python3
"""scripts/typedefs.py: write typedefs.list, the type names pg_bsd_indent
must know to format declarations as PostgreSQL does.  As PostgreSQL finds
its own, they are read from the debugging information of the built objects
(src/*.o, as `make` builds them, with -g): every typedef that trek's code
sees, its own and the server's."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    objects = sorted(str(p) for p in (ROOT / "src").glob("*.o"))
    if not objects:
        sys.exit("typedefs.py: no src/*.o: run make first")
    out = subprocess.run(["objdump", "--dwarf=info"] + objects,
                         capture_output=True, text=True, check=True).stdout
    names = set()
    in_typedef = False
    for line in out.splitlines():
        if "DW_TAG_" in line:
            in_typedef = "DW_TAG_typedef" in line
        elif in_typedef and "DW_AT_name" in line:
            m = re.search(r"DW_AT_name\s*:\s*(?:\(indirect[^)]*\):\s*)?(\w+)\s*$",
                          line)
            if m:
                names.add(m.group(1))
            in_typedef = False
    # names trek also gives variables (a file's text), as PostgreSQL's own
    # pgindent leaves out a few of its typedefs
    names -= {"text"}
    # and types of code that only other systems compile (folder.c's readdir)
    names |= {"DIR"}
    (ROOT / "typedefs.list").write_text("".join(n + "\n" for n in sorted(names)))
    print("typedefs.list: %d names" % len(names))


if __name__ == "__main__":
    main()
