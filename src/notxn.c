/*-------------------------------------------------------------------------
 *
 * notxn.c
 *	  Running a step outside a transaction.
 *
 * A file whose first line is "-- trek:no-transaction" is read and checked
 * like any step (step.c), then trek_migrate() leaves its transaction and
 * runs the statements as checked, each as a top-level command (toplevel.c,
 * which also repairs what a failed concurrent index build of the statement
 * left), with the lock waits of steps (lockwait.c) and the track lock
 * checked after each statement (state.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "lockwait.h"
#include "notxn.h"
#include "parse.h"
#include "toplevel.h"

/*
 * Run pending step p outside a transaction: each statement as a top-level
 * command of its own, in this backend, outside any transaction
 * (toplevel.c), with lock_timeout set to lock_timeout ms (0: the
 * caller's).  A statement that times out waiting for a lock is retried up
 * to retries times, as steps are; any other error (a cancel too) stops the
 * step, and is returned, copied into cxt.  After each statement the track
 * lock (lock, of track) must still be whole: a statement that released it
 * stops the step.  Either way the backend is in a new transaction with SPI
 * connected when this returns; cxt is the run's context, which
 * SPI_finish() returns to.
 */
ErrorData *
TrekNotxnRun(TrekPendingStep *p, TrekTrackLock *lock, const char *track,
			 int lock_timeout, int retries, MemoryContext cxt)
{
	TrekStepInfo *info = &p->info;
	ErrorData  *volatile edata = NULL;
	char	   *volatile saved_lock_timeout = NULL;
	ErrorContextCallback cb;
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext stmtcxt;

	/* what a statement allocates goes when it is done */
	stmtcxt = AllocSetContextCreate(oldcxt, "trek statement",
									ALLOCSET_DEFAULT_SIZES);
	TrekTopLevelEnter();
	MemoryContextSwitchTo(oldcxt);
	cb.callback = TrekStepContext;
	cb.arg = info;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	PG_TRY();
	{
		ListCell   *lc;

		if (lock_timeout > 0)
		{
			char		value[32];

			saved_lock_timeout = pstrdup(GetConfigOption("lock_timeout", false, false));
			snprintf(value, sizeof(value), "%d", lock_timeout);
			SetConfigOption("lock_timeout", value, PGC_USERSET, PGC_S_SESSION);
		}

		/*
		 * Each statement runs as the tree check_sql() made of it: parsing its
		 * text again could read it otherwise, after a statement of the step
		 * changed standard_conforming_strings.
		 */
		foreach(lc, p->stmts)
		{
			RawStmt    *raw = lfirst_node(RawStmt, lc);
			int			start = raw->stmt_location;
			int			slen = raw->stmt_len > 0 ? raw->stmt_len : p->len - start;
			int			attempt = 0;

			CHECK_FOR_INTERRUPTS();
			info->offset = TrekSkipBlanks(p->text, start, start + slen);
			MemoryContextSwitchTo(stmtcxt);
			for (;;)
			{
				char	   *who;
				long		ms;

				edata = TrekTopLevelRun(raw, p->text, TrekLockWaitProbe(),
										TrekLockWaitHolders, &who, cxt);
				MemoryContextSwitchTo(stmtcxt);
				if (!TrekStateLockHeld(lock))
				{
					/* no retry then; the statement's own error goes first */
					if (edata == NULL)
						TrekStateLockReleased(info->file, track);
					break;
				}
				if (edata == NULL || edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
					break;
				ms = TrekLockWaitRetry(edata, who, info->file, info->step - 1,
									   info->nsteps, &attempt, retries, cxt);
				if (ms < 0)
					break;
				FreeErrorData(edata);
				edata = NULL;
				TrekLockWaitPause(ms);
			}
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(stmtcxt);
			if (edata != NULL)
				break;
		}
	}
	PG_CATCH();
	{
		/* a cancel between statements, or the like */
		edata = TrekTopLevelCatch(cxt);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(stmtcxt);
	error_context_stack = cb.previous;
	if (saved_lock_timeout != NULL)
		SetConfigOption("lock_timeout", saved_lock_timeout, PGC_USERSET,
						PGC_S_SESSION);
	TrekTopLevelLeave(cxt);
	MemoryContextSwitchTo(oldcxt);
	return edata;
}
