#!/usr/bin/env python3
"""scripts/check-includes.py: trek's rooms call only downwards.

A room is a module of src/: NAME.c with its NAME.h.  Room A depends on
room B when A's .c or .h includes B's header; the dependencies must form
no cycle (types.h, which holds types only, is a room like the others).
Prints "ok - ..." or "not ok - ..." with each cycle found, and the rooms
from the bottom up; exits 1 on a cycle.
"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1]) if len(sys.argv) > 1 else \
    Path(__file__).resolve().parents[1] / "src"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)\.h"', re.M)


def rooms():
    deps = {}
    for path in sorted(SRC.glob("*.[ch]")):
        room = path.stem
        deps.setdefault(room, set())
        for name in INCLUDE.findall(path.read_text(errors="replace")):
            if name != room and (SRC / (name + ".h")).exists():
                deps[room].add(name)
    return deps


def cycles(deps):
    """Each cycle once, as a list of rooms, found by depth-first search."""
    found, seen, stack, on_stack = [], set(), [], set()

    def visit(room):
        seen.add(room)
        stack.append(room)
        on_stack.add(room)
        for dep in sorted(deps.get(room, ())):
            if dep in on_stack:
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in seen:
                visit(dep)
        stack.pop()
        on_stack.discard(room)

    for room in sorted(deps):
        if room not in seen:
            visit(room)
    return found


def layers(deps):
    """Rooms by height: 0 for those that depend on none."""
    height = {}

    def h(room, path=()):
        if room not in height:
            height[room] = 1 + max((h(d, path + (room,)) for d in deps[room]),
                                   default=-1)
        return height[room]
    for room in deps:
        h(room)
    return height


def main():
    deps = rooms()
    found = cycles(deps)
    if found:
        for c in found:
            print("not ok - include cycle: " + " -> ".join(c))
        return 1
    height = layers(deps)
    for level in range(max(height.values()) + 1):
        print("#   %d: %s" % (level, " ".join(sorted(
            r for r, v in height.items() if v == level))))
    print("ok - no include cycle among the %d rooms of src/" % len(deps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
