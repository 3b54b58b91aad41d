# trek: PGXS build, regression tests and the two entry points of README.md
EXTENSION    = trek
EXTVERSION   = 0.1
MODULE_big   = trek
OBJS         = src/trek.o src/parse.o src/folder.o src/graph.o src/plan.o \
               src/exec.o src/guard.o
DATA         = $(wildcard trek--*.sql)
REGRESS      = setup folder graph plan execute privileges errors
PG_CPPFLAGS  = -I$(srcdir)/src
EXTRA_CLEAN  = results regression.diffs regression.out

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: demo test
demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh
