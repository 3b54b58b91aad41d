/*-------------------------------------------------------------------------
 *
 * execute.c
 *	  trek_execute(): a plan in the caller's transaction.
 *
 * Every step, its history row and the run's row commit or roll back with
 * the caller's transaction.  Migrations run with the caller's rights, step
 * by step (step.c); trek's own state is state.c's, the run's record while
 * it runs runs.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "check.h"
#include "execute.h"
#include "folder.h"
#include "plan.h"
#include "runs.h"
#include "history.h"
#include "runrows.h"
#include "state.h"
#include "step.h"

#define TREK_LOCK_ADVICE "A plan runs in one transaction: raise max_locks_per_transaction, migrate in smaller plans by naming intermediate targets, or use CALL trek_migrate()."
#define TREK_ENUM_ADVICE "trek_execute() runs the whole plan in one transaction; CALL trek_migrate() commits each step, so a later step can use a value an earlier one added."

/* the record of a run of plan from folder dir, starting now, as id */
static void
run_record(TrekRunRecord *rec, int64 id, TrekPlan *plan, const char *dir,
		   Oid owner)
{
	memset(rec, 0, sizeof(TrekRunRecord));
	rec->id = id;
	rec->database = MyDatabaseId;
	rec->owner = owner;
	rec->run_by_id = GetUserId();
	rec->pid = MyProcPid;
	rec->backend_start = MyStartTimestamp;
	rec->steps_planned = plan->nsteps;
	rec->started_at = GetCurrentTimestamp();
	strlcpy(rec->state, TREK_RUN_RUNNING, sizeof(rec->state));
	TrekRunsCopy(rec->track, plan->track, sizeof(rec->track));
	TrekRunsCopy(rec->dir, dir, sizeof(rec->dir));
	TrekRunsCopy(rec->from, plan->from, sizeof(rec->from));
	TrekRunsCopy(rec->target, plan->to, sizeof(rec->target));
	TrekRunsCopy(rec->run_by, GetUserNameFromId(GetUserId(), false),
				 sizeof(rec->run_by));
}

/*
 * Run a plan in the caller's transaction and return the revision the track
 * is at afterwards.  *running says whether the run started (and so is
 * recorded), progress how far it got.
 */
static char *
execute_plan(TrekPlan *plan, bool *running, TrekProgress *progress)
{
	int			top;
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext stepcxt;
	TrekFolder *folder;
	TrekTrackLock lock;
	TrekRunRecord *rec;
	char	   *current;
	bool		owned;
	Oid			owner;
	TimestampTz *started;
	TimestampTz *finished;
	int64		run_id;

	TrekPreventIfReadOnly("trek_execute()", "apply migrations", "them");

	if ((top = TrekStepFirstOutside(plan, 0)) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("trek_execute() cannot run migration \"%s\", which must run outside a transaction",
						plan->steps[top].file),
				 errdetail("%s; trek_execute() runs the whole plan in one transaction.",
						   TrekStepWhyOutside(plan, top)),
				 errhint("Apply the plan with CALL trek_migrate(...).")));
	folder = TrekFolderOfPlan(plan);
	TrekStepCheckPython(plan, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* one run per track at a time; then where is it, and whose is it? */
	TrekStateLock(plan->track, &lock, false);
	current = TrekStateRead(plan->track, &owned, &owner, callercxt);
	TrekStateCheckOwner(plan->track, owned, owner, "migrate");

	if (TrekStepAlreadyThere(plan, current))
	{
		TrekFolderClose(folder);
		SPI_finish();
		return current;
	}
	if (strcmp(current, plan->from) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("plan is stale: track \"%s\" is at revision \"%s\", not \"%s\"",
						plan->track, current, plan->from),
				 errhint("Make a new plan with trek_plan().")));

	/* the safety gate: nothing runs if a step has a hazard it does not accept */
	TrekCheckGate(plan, 0, folder);

	/* the run, visible to other sessions from now on (runs.c) */
	TrekRunsPersist();
	run_id = TrekStateRunNextId();
	rec = palloc(sizeof(TrekRunRecord));
	run_record(rec, run_id, plan, folder->path, owned ? owner : InvalidOid);
	if (run_id >= 0)
	{
		TrekRunsBegin(rec);
		*running = true;
	}

	started = palloc(plan->nsteps * sizeof(TimestampTz));
	finished = palloc(plan->nsteps * sizeof(TimestampTz));
	stepcxt = AllocSetContextCreate(CurrentMemoryContext, "trek step",
									ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < plan->nsteps; i++)
	{
		TrekStep   *s = &plan->steps[i];
		MemoryContext oldcxt = MemoryContextSwitchTo(stepcxt);

		CHECK_FOR_INTERRUPTS();
		TrekStepReport("trek_execute", plan, i);
		TrekRunsProgress(i, s->file);
		TrekCheckHolders(plan, i);
		started[i] = GetCurrentTimestamp();
		(void) TrekStepRun(plan, i, folder, progress, false);
		finished[i] = GetCurrentTimestamp();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(stepcxt);

		ereport(NOTICE,
				(errmsg("applied migration \"%s\" (%s -> %s)",
						s->file, s->from, s->to),
				 errdetail("Step %d of %d took %.3f ms.", i + 1, plan->nsteps,
						   (double) (finished[i] - started[i]) / 1000.0)));
	}
	MemoryContextDelete(stepcxt);
	progress->step = -1;
	TrekStateRecord(plan, TrekDirectionName(plan->direction), folder->path, 0, plan->nsteps, started, finished,
					owned);
	if (run_id >= 0)
	{
		strlcpy(rec->state, TREK_RUN_DONE, sizeof(rec->state));
		rec->steps_done = plan->nsteps;
		rec->finished_at = GetCurrentTimestamp();
		TrekStateRunInsert(rec);
		TrekRunsDone();
	}
	TrekFolderClose(folder);

	SPI_finish();
	return pstrdup(plan->to);
}

/*
 * Add trek's advice to the hint of an error a step raised, keeping what
 * PostgreSQL's own hint says, and let the error go on: a full lock table
 * ("out of shared memory", with the hint to raise
 * max_locks_per_transaction), and an unsafe use of a new enum value, both
 * of which one transaction for the whole plan causes.  Called in PG_CATCH,
 * in memory context cxt.
 */
static void
amend_hint(MemoryContext cxt)
{
	MemoryContext oldcxt;
	ErrorData  *edata;
	const char *advice = NULL;

	oldcxt = MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	MemoryContextSwitchTo(oldcxt);
	if (edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY && edata->hint != NULL &&
		strstr(edata->hint, "max_locks_per_transaction") != NULL)
		advice = TREK_LOCK_ADVICE;
	else if (edata->sqlerrcode == ERRCODE_UNSAFE_NEW_ENUM_VALUE_USAGE)
		advice = TREK_ENUM_ADVICE;
	if (advice == NULL)
	{
		FreeErrorData(edata);
		return;
	}
	FlushErrorState();
	edata->hint = MemoryContextStrdup(cxt, edata->hint == NULL ? advice :
									  psprintf("%s %s", edata->hint, advice));
	ReThrowError(edata);
}

/*
 * A trek_execute() run failed: keep its record in shared memory (runs.c),
 * since this transaction's bookkeeping rolls back.  Called in PG_CATCH, in
 * memory context cxt; the error stays as it is.
 */
static void
record_failure(TrekPlan *plan, TrekProgress *progress, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	ErrorData  *edata = CopyErrorData();

	TrekRunsFailed(progress->step >= 0 ? plan->steps[progress->step].file : NULL,
				   progress->step >= 0 ? progress->line : 0,
				   edata->sqlerrcode, edata->message);
	FreeErrorData(edata);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Run a plan, refusing to be called from one of its own migrations: the
 * inner call would see the track half-way through a step and re-apply it
 * (a migration that runs trek_execute(trek_plan(...)) would recurse until
 * the stack ran out).
 */
char *
TrekExecute(TrekPlan *plan)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile result = NULL;
	volatile bool running = false;
	TrekProgress progress = {-1, 0};

	if (TrekExecuting())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_execute() cannot be called from inside a migration"),
				 errhint("Run the other plan before or after this one, in the same transaction if need be.")));

	TrekSetExecuting(true);
	PG_TRY();
	{
		result = execute_plan(plan, (bool *) &running, &progress);
	}
	PG_CATCH();
	{
		TrekSetExecuting(false);
		if (running)
			record_failure(plan, &progress, cxt);
		/* trek's advice is for errors that steps raised */
		if (progress.step >= 0)
			amend_hint(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	TrekSetExecuting(false);
	return result;
}
