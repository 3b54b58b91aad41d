# trek: PGXS build, regression tests and the entry points of README.md
EXTENSION    = trek
# the version has one source, trek.control; everything else derives it
EXTVERSION  := $(shell sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" $(EXTENSION).control)
MODULE_big   = trek
OBJS         = src/trek.o src/parse.o src/names.o src/folder.o src/graph.o src/drift.o src/plan.o \
               src/state.o src/history.o src/runrows.o \
               src/step.o src/check.o src/rehearse.o src/lockwait.o src/notxn.o src/execute.o src/migrate.o \
               src/guard.o src/python.o src/runs.o src/format.o src/adopt.o \
               src/toplevel.o src/ops.o
DATA         = $(wildcard trek--*.sql)
# the documentation, installed under share/doc/.../extension
DOCS         = $(wildcard doc/*.md)
# Each file stands alone: it creates the extension and the roles it needs
# and drops them again, so that any one runs by itself (make installcheck
# REGRESS=ops) and in any order.  The server reads the fixtures in place,
# below PG_ABS_SRCDIR: run installcheck where its OS user can read them
# (make test does; see doc/development.md).
REGRESS      = setup folder graph plan execute privileges python errors hardening \
               security migrate settings notxn ops sent relative formats adopt check upgrade
# The test database is UTF8 with the C locale, and psql talks UTF8, whatever
# the locale of the cluster or of the environment (a package build may run
# with none set, and its cluster is then SQL_ASCII).
ENCODING     = UTF8
NO_LOCALE    = 1
PG_CPPFLAGS  = -I$(srcdir)/src -DTREK_VERSION='"$(EXTVERSION)"'
EXTRA_CLEAN  = results regression.diffs regression.out src/python_shim.h META.json \
               $(FUZZ_TARGETS) fuzz/work

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
# Without the server headers only the targets that install them work.
all install installcheck:
	@echo "PostgreSQL's PGXS is missing: install postgresql-server-dev-NN (NN: the PostgreSQL major), or run 'make demo' or 'make test', which install it" >&2; exit 1
endif

# PGXS does not track headers: every object depends on all of ours.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# The Python half of Python migrations, built into the library as base64.
src/python.o src/python.bc: src/python_shim.h
src/python_shim.h: src/python_shim.py
	{ echo '/* generated from python_shim.py by the Makefile */'; \
	  printf 'static const char trek_python_shim[] = "'; \
	  base64 -w0 $<; printf '";\n'; } > $@

.PHONY: bench demo test test-matrix
bench:
	bash bench/run.sh
	bash bench/status.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Releases: `make dist` writes trek-$(DISTVERSION).zip (the archive PGXN
# takes) from the committed tree, every file under trek-$(DISTVERSION)/,
# with META.json made from META.json.in and trek.control's version;
# DISTDIR=folder puts it elsewhere. `make test-release` checks META.json,
# the versions and the archive; `make test-deb ROOT=dir` builds and tests
# the Debian package in copies of a pristine Debian root.
DISTVERSION  = $(EXTVERSION).0
DISTDIR     ?= .
.PHONY: dist test-release test-deb META.json
META.json: META.json.in
	sed 's/@DISTVERSION@/$(DISTVERSION)/g' $< > $@

dist: META.json
	git archive --format=zip --prefix=trek-$(DISTVERSION)/ --add-file=META.json \
	  -o '$(abspath $(DISTDIR))/trek-$(DISTVERSION).zip' HEAD

test-release:
	bash scripts/test-release.sh

test-deb:
	@test -n '$(ROOT)' || { echo "usage: make test-deb ROOT=/path/to/pristine/debian/root" >&2; exit 2; }
	bash scripts/test-deb.sh '$(ROOT)'

# make test on this machine's PostgreSQL and in Debian roots with 17 and 18
# (scripts/matrix.sh; needs root)
test-matrix:
	bash scripts/matrix.sh

# Robustness checks kept out of `make test` (see doc/robustness.md):
#   make fuzz      libFuzzer over the pure C parts (parse.c), FUZZ_SECONDS each
#   make sanitize  the regression suite under valgrind, trek built with UBSan
.PHONY: fuzz fuzz-build sanitize
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_LIBDIR  ?= $(shell $(PG_CONFIG) --pkglibdir)
FUZZ_TARGETS  = fuzz/fuzz_names fuzz/fuzz_sql fuzz/fuzz_path
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -Wall -Wno-ignored-attributes \
                -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir-server)

fuzz/fuzz_%: fuzz/fuzz_%.c src/parse.c src/parse.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< src/parse.c -L$(FUZZ_LIBDIR) -lpgport

fuzz-build: $(FUZZ_TARGETS)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh $(FUZZ_TARGETS)

sanitize:
	bash scripts/sanitize.sh

# The pg_regress files, for scripts/regress-order.sh
.PHONY: print-regress
print-regress:
	@echo $(REGRESS)
