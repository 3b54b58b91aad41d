/*-------------------------------------------------------------------------
 *
 * toplevel.c
 *	  Running statements as top-level commands, for steps outside a
 *	  transaction.
 *
 * Statements such as CREATE INDEX CONCURRENTLY, VACUUM or ALTER SYSTEM
 * refuse to run inside a function or a transaction block, and a procedure
 * such as trek_migrate() runs its SQL through SPI, which is neither top
 * level nor outside a transaction.  So a step marked
 * "-- trek:no-transaction" hands its statements, one at a time, to a
 * dynamic background worker connected to the same database as the same
 * role, with the caller's settings, which runs each the way psql's simple
 * query would: parsed, planned and run in a portal of its own, in an
 * implicit transaction of its own, as a top-level command.
 *
 * Caller and worker talk over two shared memory queues in one dynamic
 * shared memory segment, as parallel query does: statements go to the
 * worker; the worker's NOTICEs and errors come back in the protocol's own
 * format (pq_redirect_to_shm_mq), so the caller re-raises them with their
 * SQLSTATE, message, detail, hint and position, followed by a message that
 * the statement is done.  While the worker runs a statement the caller
 * holds no snapshot (CREATE INDEX CONCURRENTLY waits for older ones) and
 * waits on its latch, so a cancel or a timeout of the caller stops the
 * wait, and then the worker too; a caller that exits takes the worker with
 * it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "libpq/pqformat.h"
#include "libpq/pqmq.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "commands/defrem.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "exec.h"
#include "guard.h"
#include "toplevel.h"

#define TREK_TOPLEVEL_MAGIC 0x7472746c	/* "trtl" */
#define TREK_KEY_FIXED 1
#define TREK_KEY_GUC 2
#define TREK_KEY_REQUEST 3
#define TREK_KEY_RESPONSE 4
#define TREK_QUEUE_SIZE 65536

/* messages of the worker besides the protocol's 'E' and 'N' */
#define TREK_MSG_DONE 'Z'		/* the statement completed */
#define TREK_MSG_HOLDERS 'T'	/* who held the lock the statement timed out on */

/* messages of the caller */
#define TREK_REQ_RUN 'Q'
#define TREK_REQ_EXIT 'X'

/* how often a statement notes which lock it waits for (see exec.c) */
#define TREK_WAIT_PROBE_MS 20

typedef struct TrekTopLevelFixed
{
	Oid			database;
	Oid			session_user;
	Oid			outer_user;
	bool		outer_is_superuser;
	Oid			current_user;
	int			sec_context;
	int			lock_timeout;	/* trek.lock_timeout, ms; 0: the caller's */
} TrekTopLevelFixed;

struct TrekTopLevel
{
	dsm_segment *seg;
	shm_mq_handle *request;
	shm_mq_handle *response;
	BackgroundWorkerHandle *handle;
};

PGDLLEXPORT void TrekTopLevelMain(Datum arg);

/* the worker the caller has running, stopped if the caller exits */
static BackgroundWorkerHandle *running_worker = NULL;
static bool exit_callback_registered = false;

static void
stop_worker_at_exit(int code, Datum arg)
{
	if (running_worker != NULL)
		TerminateBackgroundWorker(running_worker);
}

/*
 * Start a worker for the current user, database and settings.  It lives,
 * with its segment, until TrekTopLevelStop(), across the caller's
 * transactions.
 */
TrekTopLevel *
TrekTopLevelStart(void)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	ResourceOwner oldowner = CurrentResourceOwner;
	TrekTopLevel *w = palloc0(sizeof(TrekTopLevel));
	shm_toc_estimator e;
	Size		gucsize = EstimateGUCStateSpace();
	Size		size;
	shm_toc    *toc;
	TrekTopLevelFixed *fixed;
	char	   *gucspace;
	shm_mq	   *mq;
	BackgroundWorker worker;
	pid_t		pid;

	shm_toc_initialize_estimator(&e);
	shm_toc_estimate_chunk(&e, sizeof(TrekTopLevelFixed));
	shm_toc_estimate_chunk(&e, gucsize);
	shm_toc_estimate_chunk(&e, TREK_QUEUE_SIZE);
	shm_toc_estimate_chunk(&e, TREK_QUEUE_SIZE);
	shm_toc_estimate_keys(&e, 4);
	size = shm_toc_estimate(&e);

	/* the worker outlives the caller's transactions: so does the segment */
	CurrentResourceOwner = NULL;
	w->seg = dsm_create(size, 0);
	CurrentResourceOwner = oldowner;
	toc = shm_toc_create(TREK_TOPLEVEL_MAGIC, dsm_segment_address(w->seg), size);

	fixed = shm_toc_allocate(toc, sizeof(TrekTopLevelFixed));
	fixed->database = MyDatabaseId;
	fixed->session_user = GetSessionUserId();
	fixed->outer_user = GetOuterUserId();
	fixed->outer_is_superuser = superuser_arg(GetOuterUserId());
	GetUserIdAndSecContext(&fixed->current_user, &fixed->sec_context);
	fixed->lock_timeout = TrekLockTimeout;
	shm_toc_insert(toc, TREK_KEY_FIXED, fixed);

	gucspace = shm_toc_allocate(toc, gucsize);
	SerializeGUCState(gucsize, gucspace);
	shm_toc_insert(toc, TREK_KEY_GUC, gucspace);

	mq = shm_mq_create(shm_toc_allocate(toc, TREK_QUEUE_SIZE), TREK_QUEUE_SIZE);
	shm_toc_insert(toc, TREK_KEY_REQUEST, mq);
	shm_mq_set_sender(mq, MyProc);
	w->request = shm_mq_attach(mq, w->seg, NULL);

	mq = shm_mq_create(shm_toc_allocate(toc, TREK_QUEUE_SIZE), TREK_QUEUE_SIZE);
	shm_toc_insert(toc, TREK_KEY_RESPONSE, mq);
	shm_mq_set_receiver(mq, MyProc);
	w->response = shm_mq_attach(mq, w->seg, NULL);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "trek");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "TrekTopLevelMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "trek statement runner for PID %d",
			 MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "trek statement runner");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(w->seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!exit_callback_registered)
	{
		before_shmem_exit(stop_worker_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	if (!RegisterDynamicBackgroundWorker(&worker, &w->handle))
	{
		dsm_detach(w->seg);
		MemoryContextSwitchTo(oldcxt);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a worker to run statements outside a transaction"),
				 errhint("Raise max_worker_processes, or run the step when fewer background workers are busy.")));
	}
	running_worker = w->handle;
	shm_mq_set_handle(w->request, w->handle);
	shm_mq_set_handle(w->response, w->handle);
	MemoryContextSwitchTo(oldcxt);
	if (WaitForBackgroundWorkerStartup(w->handle, &pid) != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a worker to run statements outside a transaction"),
				 errhint("See the server log.")));
	return w;
}

/*
 * Stop the worker and let go of its segment.  With wait, it is terminated
 * and gone when this returns (after a failure or a cancel, when it may
 * still be running a statement); without, it is only told to exit, which
 * an idle worker does at once.
 */
void
TrekTopLevelStop(TrekTopLevel *w, bool wait)
{
	char		req = TREK_REQ_EXIT;

	if (w->handle == NULL)
		return;
	(void) shm_mq_send(w->request, 1, &req, true, true);
	if (wait)
	{
		TerminateBackgroundWorker(w->handle);
		(void) WaitForBackgroundWorkerShutdown(w->handle);
	}
	running_worker = NULL;
	w->handle = NULL;
	dsm_detach(w->seg);
	pfree(w);
}

/*
 * Have the worker run sql as a top-level command.  NOTICEs and the like it
 * raises are raised again here as they come.  Returns NULL when the
 * statement completed, else its error, in the current memory context (and
 * with *holders naming the backends that held the lock, when it failed
 * waiting for one).  Interrupts are served while waiting: a cancel here
 * stops the worker too (see TrekTopLevelStop, which the caller's error
 * path runs).
 */
ErrorData *
TrekTopLevelRun(TrekTopLevel *w, const char *sql, char **holders)
{
	size_t		len = strlen(sql);
	char	   *req = palloc(len + 2);
	shm_mq_result res;

	*holders = NULL;
	req[0] = TREK_REQ_RUN;
	memcpy(req + 1, sql, len + 1);

	/* hold no snapshot while the worker runs: it may wait for older ones */
	InvalidateCatalogSnapshot();

	res = shm_mq_send(w->request, len + 2, req, false, true);
	pfree(req);
	if (res != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the worker running statements outside a transaction exited")));

	for (;;)
	{
		Size		nbytes;
		void	   *data;
		StringInfoData msg;
		char		type;

		CHECK_FOR_INTERRUPTS();
		res = shm_mq_receive(w->response, &nbytes, &data, true);
		if (res == SHM_MQ_WOULD_BLOCK)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		if (res != SHM_MQ_SUCCESS)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("the worker running statements outside a transaction exited")));

		msg.data = data;
		msg.len = (int) nbytes;
		msg.maxlen = (int) nbytes;
		msg.cursor = 0;
		type = pq_getmsgbyte(&msg);
		if (type == TREK_MSG_DONE)
			return NULL;
		if (type == TREK_MSG_HOLDERS)
		{
			*holders = pnstrdup(msg.data + msg.cursor, msg.len - msg.cursor);
			continue;
		}
		if (type == 'E' || type == 'N')
		{
			ErrorData	edata;

			pq_parse_errornotice(&msg, &edata);
			if (type == 'N')
			{
				/* NOTICE, WARNING, ...: pass on as they are */
				ThrowErrorData(&edata);
				continue;
			}
			edata.elevel = ERROR;
			return (ErrorData *) memcpy(palloc(sizeof(ErrorData)), &edata,
										sizeof(ErrorData));
		}
		/* other protocol messages (parameter status, ...) do not matter */
	}
}

/* ---------------------------------------------------------------- worker */

static volatile bool worker_waited_valid = false;
static LOCKTAG worker_waited_tag;

static void
worker_wait_probe(void)
{
	LOCK	   *lock = MyProc != NULL ? MyProc->waitLock : NULL;

	if (lock != NULL)
	{
		worker_waited_tag = lock->tag;
		worker_waited_valid = true;
	}
}

/*
 * Run one statement text as exec_simple_query runs a query string: each
 * statement in it parsed, analysed, planned and run in an unnamed portal,
 * as a top-level command, in an implicit transaction.  The trees live in
 * the caller's memory context, not in the transaction's: statements such
 * as CREATE INDEX CONCURRENTLY commit and start transactions themselves.
 */
static void
run_top_level(const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *parsetrees;
	ListCell   *lc;

	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	parsetrees = pg_parse_query(sql);
	foreach(lc, parsetrees)
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);
		CommandTag	tag = CreateCommandTag(raw->stmt);
		bool		snapshot = false;
		List	   *queries;
		List	   *plans;
		Portal		portal;
		DestReceiver *dest;
		QueryCompletion qc;

		if (analyze_requires_snapshot(raw))
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			snapshot = true;
		}
		queries = pg_analyze_and_rewrite_fixedparams(raw, sql, NULL, 0, NULL);
		plans = pg_plan_queries(queries, sql, CURSOR_OPT_PARALLEL_OK, NULL);
		if (snapshot)
			PopActiveSnapshot();

		portal = CreatePortal("", true, true);
		portal->visible = false;
		PortalDefineQuery(portal, NULL, sql, tag, plans, NULL);
		PortalStart(portal, NULL, 0, InvalidSnapshot);
		dest = CreateDestReceiver(DestNone);
		InitializeQueryCompletion(&qc);
#if PG_VERSION_NUM >= 180000
		(void) PortalRun(portal, FETCH_ALL, true, dest, dest, &qc);
#else
		(void) PortalRun(portal, FETCH_ALL, true, true, dest, dest, &qc);
#endif
		dest->rDestroy(dest);
		PortalDrop(portal, false);
		if (lnext(parsetrees, lc) != NULL)
			CommandCounterIncrement();
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/*
 * Send a message of our own to the caller, framed as the protocol messages
 * that pq_redirect_to_shm_mq() sends: a type byte, then the data.
 */
static shm_mq_handle *response_queue = NULL;

/*
 * Does stmt build an index concurrently (CREATE INDEX CONCURRENTLY, REINDEX
 * ... CONCURRENTLY), which leaves an INVALID index behind when it fails?
 * For CREATE INDEX, *idxname and *rel are the index's name (or NULL) and
 * its table.
 */
static bool
builds_index_concurrently(Node *stmt, char **idxname, RangeVar **rel)
{
	ListCell   *lc;

	*idxname = NULL;
	*rel = NULL;
	if (IsA(stmt, IndexStmt) && ((IndexStmt *) stmt)->concurrent)
	{
		*idxname = ((IndexStmt *) stmt)->idxname;
		*rel = ((IndexStmt *) stmt)->relation;
		return true;
	}
	if (IsA(stmt, ReindexStmt))
	{
		foreach(lc, ((ReindexStmt *) stmt)->params)
		{
			DefElem    *opt = lfirst_node(DefElem, lc);

			if (strcmp(opt->defname, "concurrently") == 0 && defGetBoolean(opt))
				return true;
		}
	}
	return false;
}

#define INVALID_INDEXES_SQL \
	"SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)" \
	" FROM pg_catalog.pg_index i" \
	" JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid" \
	" JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace" \
	" WHERE NOT i.indisvalid"

/*
 * The qualified names that query (one text column) returns, in a
 * transaction of its own; in cxt.
 */
static List *
query_names(const char *sql, int nargs, Oid *argtypes, Datum *args,
			MemoryContext cxt)
{
	List	   *names = NIL;
	int			rc;

	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	rc = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up indexes: %s", SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[r],
										SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		names = lappend(names, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return names;
}

/*
 * Drop the INVALID indexes named in names (except those in keep), each
 * with DROP INDEX CONCURRENTLY as a top-level command, one NOTICE each;
 * why says how they came to be.  A drop that fails is a WARNING.
 */
static void
drop_invalid(List *names, List *keep, const char *why)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		MemoryContext cxt = CurrentMemoryContext;

		if (list_member(keep, (void *) name))
			continue;
		PG_TRY();
		{
			run_top_level(psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", name));
			ereport(NOTICE,
					(errmsg("dropped invalid index %s, %s", name, why)));
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			edata->elevel = WARNING;
			ThrowErrorData(edata);
		}
		PG_END_TRY();
	}
}

static void
send_message(char type, const char *data, size_t len)
{
	shm_mq_iovec iov[2];

	iov[0].data = &type;
	iov[0].len = 1;
	iov[1].data = data;
	iov[1].len = len;
	(void) shm_mq_sendv(response_queue, iov, len > 0 ? 2 : 1, false, true);
}

/*
 * Run one statement of the caller's, and send back its NOTICEs and its end:
 * done, or its error.  A CREATE INDEX CONCURRENTLY first drops an INVALID
 * index of the same name that an earlier attempt left; a failed concurrent
 * index build has the INVALID index it left dropped before the error is
 * sent; a statement that timed out waiting for a lock has the lock's
 * holders sent first.
 */
static void
run_request(const char *sql, TimeoutId probe, MemoryContext cxt)
{
	volatile bool concurrent = false;
	List	   *volatile before = NIL;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		List	   *parsed;
		char	   *idxname = NULL;
		RangeVar   *rel = NULL;

		StartTransactionCommand();
		parsed = pg_parse_query(sql);
		if (list_length(parsed) == 1)
			concurrent = builds_index_concurrently(linitial_node(RawStmt, parsed)->stmt,
												   &idxname, &rel);
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		if (concurrent && idxname != NULL)
		{
			Oid			argtypes[2] = {TEXTOID, TEXTOID};
			Datum		args[2];

			args[0] = CStringGetTextDatum(idxname);
			args[1] = CStringGetTextDatum(quote_qualified_identifier(rel->schemaname,
																	  rel->relname));
			drop_invalid(query_names(INVALID_INDEXES_SQL
									 " AND c.relname OPERATOR(pg_catalog.=) $1"
									 " AND i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($2)",
									 2, argtypes, args, cxt),
						 NIL, "left by an earlier attempt, before building it again");
		}
		if (concurrent)
			before = query_names(INVALID_INDEXES_SQL, 0, NULL, NULL, cxt);

		worker_waited_valid = false;
		pgstat_report_activity(STATE_RUNNING, sql);
		enable_timeout_every(probe,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 TREK_WAIT_PROBE_MS),
							 TREK_WAIT_PROBE_MS);
		run_top_level(sql);
		disable_timeout(probe, false);
	}
	PG_CATCH();
	{
		/* as PostgresMain recovers from an error */
		HOLD_INTERRUPTS();
		disable_all_timeouts(false);
		QueryCancelPending = false;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();

	if (edata == NULL)
	{
		send_message(TREK_MSG_DONE, NULL, 0);
		return;
	}

	/* what the caller needs besides the error, then the error */
	PG_TRY();
	{
		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && worker_waited_valid)
		{
			LOCKTAG		tag = worker_waited_tag;
			char	   *who;

			StartTransactionCommand();
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			PushActiveSnapshot(GetTransactionSnapshot());
			who = TrekLockHolders(&tag);
			if (who != NULL)
				send_message(TREK_MSG_HOLDERS, who, strlen(who));
			PopActiveSnapshot();
			SPI_finish();
			CommitTransactionCommand();
		}
		if (concurrent)
			drop_invalid(query_names(INVALID_INDEXES_SQL, 0, NULL, NULL, cxt),
						 (List *) before, "left by the failed statement");
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);

	/* raise it, only to send it */
	PG_TRY();
	{
		ThrowErrorData((ErrorData *) edata);
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
}

void
TrekTopLevelMain(Datum arg)
{
	dsm_segment *seg;
	shm_toc    *toc;
	TrekTopLevelFixed *fixed;
	shm_mq_handle *request;
	shm_mq_handle *response;
	shm_mq	   *mq;
	TimeoutId	probe;
	MemoryContext workcxt;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "trek statement runner");
	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map the segment of a trek statement runner")));
	toc = shm_toc_attach(TREK_TOPLEVEL_MAGIC, dsm_segment_address(seg));
	if (toc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("bad segment for a trek statement runner")));
	fixed = shm_toc_lookup(toc, TREK_KEY_FIXED, false);

	mq = shm_toc_lookup(toc, TREK_KEY_RESPONSE, false);
	shm_mq_set_sender(mq, MyProc);
	response = shm_mq_attach(mq, seg, NULL);
	response_queue = response;
	pq_redirect_to_shm_mq(seg, response);
	mq = shm_toc_lookup(toc, TREK_KEY_REQUEST, false);
	shm_mq_set_receiver(mq, MyProc);
	request = shm_mq_attach(mq, seg, NULL);

	/* the caller's database, role and settings */
	BackgroundWorkerInitializeConnectionByOid(fixed->database,
											  fixed->session_user, 0);
	SetClientEncoding(GetDatabaseEncoding());
	StartTransactionCommand();
	RestoreGUCState(shm_toc_lookup(toc, TREK_KEY_GUC, false));
	CommitTransactionCommand();
	SetClientEncoding(GetDatabaseEncoding());
	SetCurrentRoleId(fixed->outer_user, fixed->outer_is_superuser);
	SetUserIdAndSecContext(fixed->current_user, fixed->sec_context);
	if (fixed->lock_timeout > 0)
	{
		char		value[32];

		snprintf(value, sizeof(value), "%d", fixed->lock_timeout);
		SetConfigOption("lock_timeout", value, PGC_USERSET, PGC_S_SESSION);
	}
	probe = RegisterTimeout(USER_TIMEOUT, worker_wait_probe);
	pgstat_report_appname("trek statement runner");

	workcxt = AllocSetContextCreate(TopMemoryContext, "trek statement",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		Size		nbytes;
		void	   *data;
		char	   *sql;

		MemoryContextSwitchTo(workcxt);
		MemoryContextReset(workcxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		if (shm_mq_receive(request, &nbytes, &data, false) != SHM_MQ_SUCCESS)
			break;				/* the caller is gone */
		if (nbytes < 2 || ((char *) data)[0] != TREK_REQ_RUN)
			break;
		sql = pnstrdup((char *) data + 1, nbytes - 2);
		run_request(sql, probe, workcxt);
	}
	proc_exit(0);
}
