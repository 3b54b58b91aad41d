#!/usr/bin/env python3
"""scripts/typedefs.py [INCLUDEDIR]: write typedefs.list, the type names
pg_bsd_indent must know to format declarations as PostgreSQL does: those
trek's own sources define and those of the server headers (INCLUDEDIR,
default: pg_config --includedir-server) that trek's sources use."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPEDEF = re.compile(r"\btypedef\b[^;]*?\b(\w+)\s*(?:\[[^\]]*\])?\s*;", re.S)
STRUCT_END = re.compile(r"^\}\s*(\w+)\s*;", re.M)
FUNC_PTR = re.compile(r"\btypedef\b[^;]*?\(\s*\*\s*(\w+)\s*\)", re.S)
WORD = re.compile(r"\b[A-Za-z_]\w*\b")


def names_in(text):
    names = set(TYPEDEF.findall(text)) | set(STRUCT_END.findall(text))
    names |= set(FUNC_PTR.findall(text))
    return names


def main():
    if len(sys.argv) > 1:
        incdir = Path(sys.argv[1])
    else:
        incdir = Path(subprocess.run(["pg_config", "--includedir-server"],
                                     capture_output=True, text=True,
                                     check=True).stdout.strip())
    ours = ""
    for path in sorted((ROOT / "src").glob("*.[ch]")):
        ours += path.read_text(errors="replace")
    names = names_in(ours)
    used = set(WORD.findall(ours))
    for path in incdir.rglob("*.h"):
        names |= names_in(path.read_text(errors="replace")) & used
    (ROOT / "typedefs.list").write_text("".join(n + "\n" for n in sorted(names)))
    print("typedefs.list: %d names" % len(names))


if __name__ == "__main__":
    main()
