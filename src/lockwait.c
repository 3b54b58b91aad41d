/*-------------------------------------------------------------------------
 *
 * lockwait.c
 *	  Waiting for locks: which lock a step waits for, who holds it, and the
 *	  pauses between retries.
 *
 * While a step of trek_migrate() runs, a timer notes every 20 ms which lock
 * the backend waits for, if any (a step that times out on it is rolled back
 * before anyone could ask pg_blocking_pids()); after a lock timeout the
 * holders of that lock are looked up, and the step is retried after a
 * growing, jittered pause.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "lockwait.h"

/* pauses between retries of a step that hit trek.lock_timeout */
#define TREK_RETRY_FIRST_MS 100
#define TREK_RETRY_MAX_MS 10000

/* how often a running step notes which lock it waits for, if any */
#define TREK_WAIT_PROBE_MS 20

/*
 * The lock the running step waits for, as last noted by wait_probe(): a
 * timeout handler, which PostgreSQL calls in signal context without an
 * argument, so what it notes lives here.
 */
static volatile bool waited_valid = false;
static LOCKTAG waited_tag;
static TimeoutId wait_probe_id = MAX_TIMEOUTS;

/*
 * Timeout handler (signal context): note the lock this backend waits for.
 * The waiter's own lock object cannot go away while it waits.
 */
static void
wait_probe(void)
{
	LOCK	   *lock = MyProc != NULL ? MyProc->waitLock : NULL;

	if (lock != NULL)
	{
		waited_tag = lock->tag;
		waited_valid = true;
	}
}

/* the probe's timeout (registered once per backend), nothing noted yet */
TimeoutId
TrekLockWaitProbe(void)
{
	if (wait_probe_id == MAX_TIMEOUTS)
		wait_probe_id = RegisterTimeout(USER_TIMEOUT, wait_probe);
	waited_valid = false;
	return wait_probe_id;
}

/* start noting the lock waited for, every TREK_WAIT_PROBE_MS */
void
TrekLockWaitStart(void)
{
	enable_timeout_every(TrekLockWaitProbe(),
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 TREK_WAIT_PROBE_MS),
						 TREK_WAIT_PROBE_MS);
}

void
TrekLockWaitStop(void)
{
	if (wait_probe_id != MAX_TIMEOUTS)
		disable_timeout(wait_probe_id, false);
}

/*
 * The backends holding lock tag (as pg_blocking_pids() would have named
 * them while a statement waited for it), with what they run, as far as the
 * current user may see it; NULL if none is known.  Needs SPI.
 */
static char *
lock_holders(const LOCKTAG *waited)
{
	Oid			argtypes[6] = {TEXTOID, OIDOID, OIDOID, TEXTOID, INT4OID, INT4OID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', 'n', 'n', 'n'};
	const char *kind;
	int			rc;
	char	   *result = NULL;
	LOCKTAG		tag = *waited;

	switch ((LockTagType) tag.locktag_type)
	{
		case LOCKTAG_RELATION:
			kind = "relation";
			break;
		case LOCKTAG_TUPLE:
			kind = "tuple";
			nulls[4] = nulls[5] = ' ';
			args[4] = Int32GetDatum((int32) tag.locktag_field3);
			args[5] = Int32GetDatum((int32) tag.locktag_field4);
			break;
		case LOCKTAG_TRANSACTION:
			kind = "transactionid";
			nulls[3] = ' ';
			args[3] = CStringGetTextDatum(psprintf("%u", tag.locktag_field1));
			break;
		case LOCKTAG_VIRTUALTRANSACTION:
			/* CREATE INDEX CONCURRENTLY waits for transactions like this */
			kind = "virtualxid";
			nulls[3] = ' ';
			args[3] = CStringGetTextDatum(psprintf("%d/%u",
												   (int) tag.locktag_field1,
												   tag.locktag_field2));
			break;
		default:
			return NULL;
	}
	args[0] = CStringGetTextDatum(kind);
	args[1] = ObjectIdGetDatum(tag.locktag_field1);
	args[2] = ObjectIdGetDatum(tag.locktag_field2);
	rc = SPI_execute_with_args("SELECT pg_catalog.string_agg(pg_catalog.format("
							   "'pid %s (%s: %s)', a.pid,"
							   " COALESCE(a.state, 'state not visible'),"
							   " pg_catalog.left(COALESCE(a.query, ''), 200)),"
							   " ', ' ORDER BY a.pid)"
							   " FROM pg_catalog.pg_stat_activity a"
							   " WHERE a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
							   " AND a.pid OPERATOR(pg_catalog.=) ANY (SELECT l.pid"
							   " FROM pg_catalog.pg_locks l WHERE l.granted"
							   " AND l.locktype OPERATOR(pg_catalog.=) $1"
							   " AND ($1 OPERATOR(pg_catalog.=) ANY ('{transactionid,virtualxid}')"
							   " OR (l.database OPERATOR(pg_catalog.=) $2"
							   " AND l.relation OPERATOR(pg_catalog.=) $3))"
							   " AND ($4 IS NULL OR COALESCE(l.transactionid::pg_catalog.text,"
							   " l.virtualxid) OPERATOR(pg_catalog.=) $4)"
							   " AND ($5 IS NULL OR (l.page OPERATOR(pg_catalog.=) $5"
							   " AND l.tuple OPERATOR(pg_catalog.=) $6)))",
							   6, argtypes, args, nulls, true, 1);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1);

		if (v != NULL)
			result = pstrdup(v);
	}
	return result;
}

/* who held the lock the last statement timed out on (needs SPI) */
char *
TrekLockWaitHolders(void)
{
	return waited_valid ? lock_holders(&waited_tag) : NULL;
}

/*
 * Wait ms milliseconds, or less if interrupted (a cancel ends the run).
 */
void
TrekLockWaitPause(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		left = (long) ((end - GetCurrentTimestamp()) / 1000);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * A statement of step i of nsteps (file) failed with a lock timeout (edata)
 * while who (NULL: nobody known) held the lock: if fewer than retries
 * retries were made (*attempt counts them), say so in a NOTICE naming the
 * holders and return the pause before the next attempt, in ms; else put
 * the holders into the error's hint (in cxt) and return -1.
 */
long
TrekLockWaitRetry(ErrorData *edata, const char *who, const char *file, int i,
				  int nsteps, int *attempt, int retries, MemoryContext cxt)
{
	long		ms;

	if (*attempt >= retries)
	{
		edata->hint = MemoryContextStrdup(cxt, who != NULL ?
										  psprintf("Blocking: %s. Let them finish, or raise trek.lock_timeout or trek.lock_retries.", who) :
										  "Raise trek.lock_timeout or trek.lock_retries, or migrate when the tables are less busy.");
		return -1;
	}
	ms = Min((long) TREK_RETRY_FIRST_MS << Min(*attempt, 16),
			 (long) TREK_RETRY_MAX_MS);
	ms = (long) (ms * (0.5 + 0.5 * pg_prng_double(&pg_global_prng_state)));
	(*attempt)++;
	ereport(NOTICE,
			(errmsg("migration \"%s\", step %d of %d, timed out waiting for a lock; retrying in %ld ms (retry %d of %d)",
					file, i + 1, nsteps, ms, *attempt, retries),
			 who != NULL ?
			 errdetail("Blocking: %s.", who) :
			 errdetail("No blocking session is left.")));
	return ms;
}
