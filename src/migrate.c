/*-------------------------------------------------------------------------
 *
 * migrate.c
 *	  trek_migrate(): one step, one commit.
 *
 * The run holds the track's lock as a session lock from start to end, so
 * it serialises with trek_execute() and other runs although it commits
 * many times.  Each step runs in a subtransaction of its own transaction
 * (step.c), with lock_timeout set to trek.lock_timeout; its history row
 * and the run's progress commit with it.  A step that times out waiting
 * for a lock is rolled back and retried after a growing, jittered pause
 * (lockwait.c); a step outside a transaction runs its statements as
 * top-level commands (notxn.c).  Any other error rolls the step back,
 * records the failure in the run's row, commits that, and is raised again
 * with its SQLSTATE and context.  The run's settings, trek.lock_timeout
 * and trek.lock_retries, are this room's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "check.h"
#include "folder.h"
#include "history.h"
#include "lockwait.h"
#include "migrate.h"
#include "notxn.h"
#include "plan.h"
#include "runrows.h"
#include "runs.h"
#include "state.h"
#include "step.h"

/* trek.lock_timeout (ms) and trek.lock_retries: the settings of the runs */
#define TREK_DEFAULT_LOCK_TIMEOUT 5000
#define TREK_DEFAULT_LOCK_RETRIES 10

static int	TrekLockTimeout = TREK_DEFAULT_LOCK_TIMEOUT;
static int	TrekLockRetries = TREK_DEFAULT_LOCK_RETRIES;

/*
 * trek.lock_timeout and trek.lock_retries are defaults that a superuser
 * sets (postgresql.conf, ALTER SYSTEM, ALTER ROLE/DATABASE ... SET as a
 * superuser) and that a session of any other role may lower but not raise:
 * a migration run by an application role must not queue the application's
 * traffic for longer than the administrator decided.  0 means no limit, so
 * it is the highest value of all.
 *
 * Who set a value is told by its source.  PostgreSQL applies the server's
 * configuration and the values stored with ALTER ROLE/DATABASE ... SET
 * (pg_db_role_setting, sources PGC_S_GLOBAL to PGC_S_DATABASE_USER) with
 * superuser rights, whoever the session's user is: set_config_option
 * trusts every source below PGC_S_INTERACTIVE but PGC_S_CLIENT, assuming
 * that the right to store a value was checked when it was stored.  The
 * values reach this hook with those sources both when trek is loaded
 * before they are applied and when DefineCustomIntVariable takes them over
 * from their placeholders, so they are accepted as they are.
 *
 * The check when a value is stored comes here with source PGC_S_TEST (ALTER
 * ROLE/DATABASE ... SET, and a function's SET clause), and only superusers
 * pass it: a value stored by a role allowed to alter itself or to own a
 * database would later be applied as a superuser's, to other sessions too.
 * While trek is not loaded, PostgreSQL itself lets only superusers (and
 * roles granted SET on the parameter) store a value.
 *
 * Everything else (SET, set_config(), connection options, a function's SET
 * clause when the function is called) may lower the value the session
 * would otherwise have, its reset value, unless the current user is a
 * superuser.  Values set before trek was loaded are judged by the outer
 * user (the session's role after SET ROLE), not by the owner of a security
 * definer function that happens to load trek.  A parallel worker takes its
 * leader's values, which were checked there.
 */
static bool taking_over_placeholders = false;

static bool
check_lowered(int newval, const char *name, GucSource source,
			  bool zero_unlimited)
{
	const char *reset;
	int			limit;
	bool		ok;

	if (source < PGC_S_INTERACTIVE && source != PGC_S_CLIENT)
		return true;
	if (InitializingParallelWorker)
		return true;
	if (taking_over_placeholders ? superuser_arg(GetOuterUserId()) : superuser())
		return true;
	if (source == PGC_S_TEST)
	{
		GUC_check_errdetail("Only superusers may store a value of \"%s\": values stored with ALTER ROLE, ALTER DATABASE or a function's SET clause apply with superuser rights.",
							name);
		GUC_check_errhint("SET lowers \"%s\" for the current session.", name);
		return false;
	}
	reset = GetConfigOptionResetString(name);
	if (reset == NULL || !parse_int(reset, &limit, GUC_UNIT_MS, NULL))
		return true;
	if (zero_unlimited)
		ok = limit == 0 || (newval != 0 && newval <= limit);
	else
		ok = newval <= limit;
	if (!ok)
		GUC_check_errdetail("Only superusers may raise \"%s\" above %s.",
							name, reset);
	return ok;
}

static bool
check_lock_timeout(int *newval, void **extra, GucSource source)
{
	return check_lowered(*newval, "trek.lock_timeout", source, true);
}

static bool
check_lock_retries(int *newval, void **extra, GucSource source)
{
	return check_lowered(*newval, "trek.lock_retries", source, false);
}

void
TrekMigrateDefineSettings(void)
{
	/*
	 * Values set while trek was not loaded are taken over from their
	 * placeholders here, and judged as check_lowered says.
	 */
	taking_over_placeholders = true;
	PG_TRY();
	{
		DefineCustomIntVariable("trek.lock_timeout",
								"lock_timeout for each statement of a step run by trek_migrate().",
								"A statement that waits longer for a lock is rolled back with its step, and the step is retried after a pause. 0 keeps the caller's lock_timeout.",
								&TrekLockTimeout,
								TREK_DEFAULT_LOCK_TIMEOUT,
								0,
								INT_MAX,
								PGC_USERSET,
								GUC_UNIT_MS,
								check_lock_timeout,
								NULL,
								NULL);
		DefineCustomIntVariable("trek.lock_retries",
								"How often trek_migrate() retries a step that hit trek.lock_timeout.",
								NULL,
								&TrekLockRetries,
								TREK_DEFAULT_LOCK_RETRIES,
								0,
								1000,
								PGC_USERSET,
								0,
								check_lock_retries,
								NULL,
								NULL);
	}
	PG_FINALLY();
	{
		taking_over_placeholders = false;
	}
	PG_END_TRY();
}

/* a trek_migrate() run */
typedef struct TrekMigrateRun
{
	TrekPlan   *plan;			/* NULL until planned or given */
	TrekTrackLock lock;			/* the track's, held for the whole run */
	int64		id;				/* its row in trek.runs, or -1 */
	bool		ended;			/* its row says how it ended */
	TrekProgress progress;
	bool		nested;			/* called from a procedure or DO block */
	MemoryContext cxt;			/* the run's memory */
	TrekFolder *sent;			/* the texts of a sent folder's plan, or NULL */
} TrekMigrateRun;

/*
 * Run step i in a subtransaction, with trek.lock_timeout and the wait
 * probe on.  Returns NULL on success, else the error (copied into cxt),
 * with the subtransaction rolled back.
 */
static ErrorData *
run_step_guarded(TrekMigrateRun *run, int i, TrekFolder *folder,
				 TrekPendingStep **pending)
{
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int			nest = NewGUCNestLevel();

		if (TrekLockTimeout > 0)
		{
			char		value[32];

			snprintf(value, sizeof(value), "%d", TrekLockTimeout);
			(void) set_config_option("lock_timeout", value, PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
									 false);
		}
		TrekLockWaitStart();
		*pending = TrekStepRun(run->plan, i, folder, &run->progress,
							   !run->nested);
		TrekLockWaitStop();
		if (!TrekStateLockHeld(&run->lock))
			TrekStateLockReleased(run->plan->steps[i].file, run->plan->track);
		AtEOXact_GUC(true, nest);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		TrekLockWaitStop();
		MemoryContextSwitchTo(run->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/* commit what the current transaction did, and start the next */
static void
commit_and_continue(void)
{
	SPI_commit();
	SPI_start_transaction();
}

/*
 * The error context of what a step does after its SQL: writing its history
 * row and committing it (a deferred constraint of the step fails there).
 */
static void
commit_context(void *arg)
{
	TrekStep   *s = (TrekStep *) arg;

	errcontext("committing migration \"%s\"", s->file);
}

/*
 * Run the steps from first on, each committed with its history row.
 */
static void
migrate_steps(TrekMigrateRun *run, int first, bool owned)
{
	TrekPlan   *plan = run->plan;
	MemoryContext stepcxt = AllocSetContextCreate(run->cxt, "trek step",
												  ALLOCSET_DEFAULT_SIZES);

	for (int i = first; i < plan->nsteps; i++)
	{
		TrekStep   *s = &plan->steps[i];
		TimestampTz started;
		TimestampTz finished;
		TrekFolder *folder;
		ErrorData  *edata;
		ErrorContextCallback cb;
		int			attempt = 0;
		bool		top_level;
		TrekPendingStep *pending;
		MemoryContext oldcxt;

		for (;;)
		{
			CHECK_FOR_INTERRUPTS();
			oldcxt = MemoryContextSwitchTo(stepcxt);
			run->progress.step = i;
			run->progress.line = 0;
			folder = run->sent ? run->sent : TrekFolderOfPlan(plan);
			TrekStepReport("trek_migrate", plan, i);
			TrekCheckHolders(plan, i);
			started = GetCurrentTimestamp();
			pending = NULL;
			edata = run_step_guarded(run, i, folder, &pending);
			top_level = pending != NULL;
			if (top_level)
			{
				/* read and checked: now outside a transaction */
				TrekFolderClose(folder);
				if (edata == NULL)
					edata = TrekNotxnRun(pending, &run->lock, plan->track,
										 TrekLockTimeout, TrekLockRetries,
										 run->cxt);
				folder = run->sent ? run->sent : TrekFolderOfPlan(plan);
			}
			MemoryContextSwitchTo(oldcxt);
			if (edata == NULL)
				break;

			TrekFolderClose(folder);
			/* a step outside a transaction retried its statements itself */
			if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && !top_level &&
				TrekStateLockHeld(&run->lock))
			{
				long		ms = TrekLockWaitRetry(edata,
												   TrekLockWaitHolders(),
												   s->file, i, plan->nsteps,
												   &attempt, TrekLockRetries,
												   run->cxt);

				if (ms >= 0)
				{
					FreeErrorData(edata);
					commit_and_continue();
					TrekLockWaitPause(ms);
					MemoryContextReset(stepcxt);
					continue;
				}
			}
			ReThrowError(edata);
		}
		finished = GetCurrentTimestamp();

		cb.callback = commit_context;
		cb.arg = s;
		cb.previous = error_context_stack;
		error_context_stack = &cb;
		TrekStateRecord(plan, TrekDirectionName(plan->direction), folder->path, i, 1, &started, &finished, owned);
		owned = true;
		TrekStateRunUpdate(run->id, i + 1,
						   i + 1 < plan->nsteps ? plan->steps[i + 1].file : NULL,
						   i + 1 < plan->nsteps ? NULL : TREK_RUN_DONE,
						   NULL, NULL, 0);
		TrekFolderClose(folder);
		commit_and_continue();
		if (i + 1 == plan->nsteps)
			run->ended = true;
		error_context_stack = cb.previous;
		MemoryContextReset(stepcxt);

		ereport(NOTICE,
				(errmsg("applied migration \"%s\" (%s -> %s)",
						s->file, s->from, s->to),
				 errdetail("Step %d of %d took %.3f ms.", i + 1, plan->nsteps,
						   (double) (finished - started) / 1000.0)));
	}
	run->progress.step = -1;
	MemoryContextDelete(stepcxt);
}

/*
 * The part of a run that holds the track's lock.  given is the plan of
 * trek_migrate(plan), or NULL: then the plan is made here, under the lock.
 */
static void
migrate_locked(TrekMigrateRun *run, TrekPlan *given, const TrekFolderRef *where,
			   const char *target, const char *direction, const char *track)
{
	TrekPlan   *plan = given;
	TrekFolder *folder;
	char	   *current;
	bool		owned;
	Oid			owner;
	int			first = 0;
	int			top;

	if (plan == NULL)
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		plan = TrekPlanMake(where, target, direction, track,
							TrekStateTrail(track, target));
		PopActiveSnapshot();
	}
	folder = TrekFolderOfPlan(plan);
	if (folder->sent)
		run->sent = folder;		/* built once: the steps only read it */
	current = TrekStateRead(plan->track, &owned, &owner, run->cxt);
	TrekStateCheckOwner(plan->track, owned, owner, "migrate");

	if (TrekStepAlreadyThere(plan, current))
	{
		TrekFolderClose(folder);
		return;
	}
	if (strcmp(current, plan->from) != 0)
	{
		/* a plan that an earlier run took part of the way goes on from there */
		for (first = 1; first < plan->nsteps; first++)
			if (strcmp(plan->steps[first].from, current) == 0)
				break;
		/* a plan without steps (direction none) has none to continue at */
		if (first >= plan->nsteps)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("plan is stale: track \"%s\" is at revision \"%s\", not \"%s\"",
							plan->track, current, plan->from),
					 errhint("Make a new plan with trek_plan(), or call trek_migrate() with the folder and the target.")));
		ereport(NOTICE,
				(errmsg("track \"%s\" is at revision \"%s\": continuing the plan at step %d of %d",
						plan->track, current, first + 1, plan->nsteps)));
	}
	TrekStepCheckPython(plan, first);
	if (run->nested && (top = TrekStepFirstOutside(plan, first)) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("trek_migrate() cannot run migration \"%s\" from inside a procedure or a DO block",
						plan->steps[top].file),
				 errdetail("%s: its statements run as top-level commands, which only a CALL at the top level can do.",
						   TrekStepWhyOutside(plan, top)),
				 errhint("Call trek_migrate() directly: CALL trek_migrate(...) from the client or a pg_cron job.")));

	/* the safety gate: nothing runs if a step has a hazard it does not accept */
	TrekCheckGate(plan, first, folder);

	/* failed trek_execute() runs only in shared memory go in too */
	TrekRunsPersist();
	run->plan = plan;
	run->id = TrekStateRunStart(plan, folder->path, first,
								plan->steps[first].file);
	TrekFolderClose(folder);
	commit_and_continue();
	migrate_steps(run, first, owned);
}

/*
 * A run failed with edata after its row was written: say so in the row,
 * with the file and line it failed at, in a transaction of its own (the
 * failed one is rolled back first).  Called in PG_CATCH after
 * FlushErrorState(); a failure to record is a WARNING, and the run's error
 * is the one raised.
 */
static void
record_migrate_failure(TrekMigrateRun *run, ErrorData *edata)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	int			step = run->progress.step;

	PG_TRY();
	{
		SPI_rollback();
		SPI_start_transaction();
		TrekStateRunUpdate(run->id, step >= 0 ? step : 0,
						   step >= 0 ? run->plan->steps[step].file : NULL,
						   TREK_RUN_FAILED, unpack_sql_state(edata->sqlerrcode),
						   edata->message, step >= 0 ? run->progress.line : 0);
		commit_and_continue();
	}
	PG_CATCH();
	{
		ErrorData  *record_error;

		MemoryContextSwitchTo(run->cxt);
		record_error = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errcode(record_error->sqlerrcode),
				 errmsg("could not record the failure of run %lld in trek.runs: %s",
						(long long) run->id, record_error->message)));
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
}

/*
 * CALL trek_migrate(): run given (a plan from trek_plan), or plan from the
 * folder where (on the server, or sent) to target and run that, one step per transaction.  atomic says whether
 * the call came from a context that cannot commit (a transaction block).
 */
void
TrekMigrate(bool atomic, TrekPlan *given, const TrekFolderRef *where,
			const char *target, const char *direction, const char *track)
{
	const char *locked = given != NULL ? given->track : track;
	MemoryContext callercxt = CurrentMemoryContext;
	TrekMigrateRun *run;

	if (atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("trek_migrate() cannot run inside a transaction block"),
				 errdetail("trek_migrate() commits each step, so it must be called on its own, not inside BEGIN ... COMMIT or a function."),
				 errhint("Call it in autocommit mode, or use SELECT trek_execute(trek_plan(...)) to apply the whole plan in one transaction.")));
	TrekPreventIfReadOnly("trek_migrate()", "apply migrations", "them");
	if (TrekExecuting())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_migrate() cannot be called from inside a migration")));

	/*
	 * The run lives in a context of its own, not in SPI's: a step outside a
	 * transaction leaves SPI for a while (notxn.c).
	 */
	run = MemoryContextAllocZero(CurrentMemoryContext, sizeof(TrekMigrateRun));
	run->nested = SPI_inside_nonatomic_context();
	run->cxt = AllocSetContextCreate(CurrentMemoryContext, "trek_migrate",
									 ALLOCSET_DEFAULT_SIZES);
	run->id = -1;
	run->progress.step = -1;
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(run->cxt);

	/*
	 * Wait for the track without a snapshot: CALL runs with one, and a step
	 * outside a transaction that builds an index concurrently waits for every
	 * older snapshot, also for ours while we wait for it.  Committing the
	 * (empty) transaction lets go of it.  A cancel while waiting here leaves
	 * nothing to release.
	 */
	commit_and_continue();
	InvalidateCatalogSnapshot();
	TrekStateLock(locked, &run->lock, true);
	TrekSetExecuting(true);
	PG_TRY();
	{
		migrate_locked(run, given, where, target, direction, track);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		TrekSetExecuting(false);
		MemoryContextSwitchTo(run->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* however it failed (a step, a cancel, a commit), the row says so */
		if (run->id >= 0 && !run->ended)
			record_migrate_failure(run, edata);
		TrekStateUnlock(&run->lock);
		ReThrowError(edata);
	}
	PG_END_TRY();
	TrekSetExecuting(false);
	TrekStateUnlock(&run->lock);
	SPI_finish();
	MemoryContextSwitchTo(callercxt);
	MemoryContextDelete(run->cxt);
}
