# trek: PGXS build, regression tests and the two entry points of README.md
EXTENSION    = trek
EXTVERSION   = 0.1
MODULE_big   = trek
OBJS         = src/trek.o src/parse.o src/folder.o src/graph.o src/plan.o \
               src/exec.o src/guard.o src/python.o
DATA         = $(wildcard trek--*.sql)
REGRESS      = setup folder graph plan execute privileges python errors
PG_CPPFLAGS  = -I$(srcdir)/src
EXTRA_CLEAN  = results regression.diffs regression.out src/python_shim.h

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The Python half of Python migrations, built into the library as base64.
src/python.o src/python.bc: src/python_shim.h
src/python_shim.h: src/python_shim.py
	{ echo '/* generated from python_shim.py by the Makefile */'; \
	  printf 'static const char trek_python_shim[] = "'; \
	  base64 -w0 $<; printf '";\n'; } > $@

.PHONY: demo test
demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh
