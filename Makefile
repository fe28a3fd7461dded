# tenant_isolation: PGXS build, plus the throwaway-cluster targets the README names.
EXTENSION  = tenant_isolation
MODULE_big = tenant_isolation
OBJS = $(WIN32RES) \
	src/tenant_isolation.o \
	src/context.o \
	src/catalog.o \
	src/planner.o \
	src/executor.o \
	src/utility.o \
	src/guard.o \
	src/largeobj.o \
	src/identity.o \
	src/instrument.o \
	src/denials.o \
	src/shmem.o \
	src/audit.o \
	src/limits.o \
	src/keys.o \
	src/provision.o \
	src/schema_tier.o \
	src/jwt.o \
	src/citus.o
DATA = $(wildcard sql/tenant_isolation--*.sql)
PGFILEDESC = "tenant_isolation - tenant scoping for shared tables"
PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK  = -lcrypto -lsodium

REGRESS = init context reads writes utility largeobj cache parallel jwt tenants keys limits audit lint badinput leaks privilege lifecycle gaps plan_switch
REGRESS_OPTS = --inputdir=test --temp-config=$(srcdir)/test/tenant_isolation.conf
ISOLATION = context_switch tenant_move limits_sessions audit_concurrency conflict_lock
ISOLATION_OPTS = --inputdir=test --outputdir=. --temp-config=$(srcdir)/test/tenant_isolation.conf

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)


# PGXS "make check" does nothing for extensions in PostgreSQL 15 and exits 0;
# these targets run pg_regress against a temporary instance instead.
tempcheck:
	$(pg_regress_installcheck) $(REGRESS_OPTS) --temp-instance=./tmp_check $(REGRESS)

# The same suites again with every query executed in a parallel worker.
tempcheck-parallel:
	$(pg_regress_installcheck) $(REGRESS_OPTS) --temp-config=$(srcdir)/test/parallel.conf --temp-instance=./tmp_check $(REGRESS)

isocheck:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) --temp-instance=./tmp_check_iso $(ISOLATION)

# The two commands of README.md.  Both run as root on a fresh Debian 12:
# they install what is missing, build, install, and run a throwaway cluster
# as an unprivileged user.
demo:
	bash test/scripts/demo.sh

test:
	bash test/scripts/test.sh

# Benchmarks against native row level security (test/bench/README.md).
# BENCH_SIZE=small|full (default small).
bench:
	bash test/bench/run.sh

# Deterministic mode (issue 17): callgrind instructions per transaction of
# every cell, 3 interleaved repetitions, markdown table in test/bench/out/instr.md.
bench-instr:
	bash test/bench/bench_instr.sh

.PHONY: tempcheck tempcheck-parallel isocheck demo test bench bench-instr

# TAP tests (test/t/*.pl) against clusters they create themselves; run
# "make install" first.
PROVE_TESTS = test/t/*.pl
PROVE_FLAGS = --verbose
tapcheck:
	$(prove_installcheck)

.PHONY: tapcheck

# Hardening (docs/hardening.md).  Like make test: run as root (or with
# sudo); they install into the system PostgreSQL and run clusters as
# $(TI_USER) (default postgres).  ubsan, asserts and valgrind reinstall the
# ordinary build when they finish.
ubsan asserts valgrind:
	HARDEN_REGRESS="$(REGRESS)" bash test/hardening/sanitize.sh $@

stress:
	STRESS_SECONDS=$${STRESS_SECONDS:-60} bash test/hardening/stress.sh

stress-long:
	STRESS_TRANSACTIONS=$${STRESS_TRANSACTIONS:-200000} bash test/hardening/stress.sh

crash:
	bash test/hardening/tap.sh test/t/062_crash.pl

# The stress run with a concurrent DDL storm (issue 16).
stress-ddl:
	STRESS_DDL=1 STRESS_SECONDS=$${STRESS_SECONDS:-60} bash test/hardening/stress.sh

.PHONY: ubsan asserts valgrind stress stress-long crash stress-ddl

# PostgreSQL's own regression suite, stock vs. preloaded vs. extension in
# every database (test/pgregress/run.sh; root, after make install).
pgregress:
	bash test/pgregress/run.sh

.PHONY: pgregress
