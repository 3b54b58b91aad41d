/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background workers of trek: recording a failed trek_execute() run.
 *
 * trek_execute() runs in the caller's transaction, so when a step fails
 * its bookkeeping rolls back with it.  So that trek.runs still shows the
 * failed run, the failing backend hands the run's record to a short-lived
 * dynamic background worker, connected to the same database as the owner
 * of trek's state, which inserts it in a transaction of its own.  The
 * record travels in a dynamic shared memory segment that the backend pins
 * and the worker unpins once it has read it, so the backend need not wait:
 * the error goes on at once, and the worker writes once the failed
 * transaction's locks are gone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "tcop/tcopprot.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "state.h"
#include "worker.h"

/* the strings of a TrekFailedRun, in this order, after the fixed part */
#define TREK_RUN_STRINGS 8

typedef struct TrekRunMessage
{
	Oid			database;
	Oid			owner;			/* runs as this role: trek's state's owner */
	TrekFailedRun run;			/* its string pointers are not used here */
	Size		offsets[TREK_RUN_STRINGS];
	char		data[FLEXIBLE_ARRAY_MEMBER];
} TrekRunMessage;

PGDLLEXPORT void TrekRecorderMain(Datum arg);

static const char **
run_strings(TrekFailedRun *run, const char **out)
{
	out[0] = run->track;
	out[1] = run->dir;
	out[2] = run->from;
	out[3] = run->target;
	out[4] = run->run_by;
	out[5] = run->current_file;
	out[6] = run->sqlstate;
	out[7] = run->message;
	return out;
}

/*
 * Have run recorded as a failed run of trek_execute() in trek.runs, by a
 * background worker connected as owner.  Reports nothing and waits for
 * nothing: it is called while an error is on its way out.  Returns whether
 * the worker was started.
 */
bool
TrekRecordFailedRun(TrekFailedRun *run, Oid owner)
{
	const char *strings[TREK_RUN_STRINGS];
	Size		size = offsetof(TrekRunMessage, data);
	dsm_segment *seg;
	TrekRunMessage *msg;
	BackgroundWorker worker;
	Size		at = 0;
	ResourceOwner save = CurrentResourceOwner;
	bool		started;

	run_strings(run, strings);
	for (int i = 0; i < TREK_RUN_STRINGS; i++)
		size += (strings[i] ? strlen(strings[i]) : 0) + 1;

	/* a segment of the session, not of the transaction that is failing */
	CurrentResourceOwner = NULL;
	seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	CurrentResourceOwner = save;
	if (seg == NULL)
		return false;
	msg = dsm_segment_address(seg);
	msg->database = MyDatabaseId;
	msg->owner = owner;
	msg->run = *run;
	for (int i = 0; i < TREK_RUN_STRINGS; i++)
	{
		size_t		len = strings[i] ? strlen(strings[i]) : 0;

		msg->offsets[i] = strings[i] ? at : (Size) -1;
		if (strings[i])
			memcpy(msg->data + at, strings[i], len);
		msg->data[at + len] = '\0';
		at += len + 1;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "trek");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "TrekRecorderMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "trek run recorder for PID %d",
			 MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "trek run recorder");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = 0;

	dsm_pin_segment(seg);
	started = RegisterDynamicBackgroundWorker(&worker, NULL);
	if (!started)
		dsm_unpin_segment(dsm_segment_handle(seg));
	dsm_detach(seg);
	return started;
}

static const char *
message_string(TrekRunMessage *msg, int i)
{
	return msg->offsets[i] == (Size) -1 ? NULL : msg->data + msg->offsets[i];
}

/*
 * The worker: read the record, unpin its segment, insert it, exit.
 */
void
TrekRecorderMain(Datum arg)
{
	dsm_handle	handle = DatumGetUInt32(arg);
	dsm_segment *seg;
	TrekRunMessage *msg;
	TrekFailedRun run;
	Oid			database;
	Oid			owner;

	/*
	 * The default handler of SIGTERM in a background worker reports FATAL
	 * from inside the signal handler, wherever the worker is: in a critical
	 * section that is a PANIC (a restart of the whole server), in the
	 * middle of taking a lightweight lock it can leave the lock manager
	 * wedged.  die() only notes the request; it is acted on at the next
	 * CHECK_FOR_INTERRUPTS(), as in any backend.
	 */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "trek run recorder");
	seg = dsm_attach(handle);
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map the record of a failed trek run")));
	msg = dsm_segment_address(seg);
	database = msg->database;
	owner = msg->owner;
	run = msg->run;
	run.track = pstrdup(message_string(msg, 0));
	run.dir = pstrdup(message_string(msg, 1));
	run.from = pstrdup(message_string(msg, 2));
	run.target = pstrdup(message_string(msg, 3));
	run.run_by = pstrdup(message_string(msg, 4));
	run.current_file = message_string(msg, 5) ?
		pstrdup(message_string(msg, 5)) : NULL;
	run.sqlstate = pstrdup(message_string(msg, 6));
	run.message = pstrdup(message_string(msg, 7));
	dsm_unpin_segment(handle);
	dsm_detach(seg);

	BackgroundWorkerInitializeConnectionByOid(database, owner, 0);
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	TrekStateRunFailed(&run);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}
