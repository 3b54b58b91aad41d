/*-------------------------------------------------------------------------
 *
 * toplevel.c
 *	  Running statements as top-level commands, for steps outside a
 *	  transaction.
 *
 * Statements such as CREATE INDEX CONCURRENTLY, VACUUM or ALTER SYSTEM
 * refuse to run inside a function or a transaction block, and trek runs
 * the SQL of a step through SPI, which is neither top level nor outside a
 * transaction.  A procedure called with CALL at the top level may end its
 * transaction, though, as PL/pgSQL's COMMIT does: so for a step marked
 * "-- trek:no-transaction", trek_migrate() commits, leaves SPI and the
 * transaction altogether (TrekTopLevelEnter), and runs each statement
 * the way psql's simple query would: planned and run in a portal of its
 * own, in an implicit transaction of its own, as a top-level command, in
 * the caller's own backend, as the caller's role, with the caller's
 * settings.  Then it starts a transaction and SPI again (TrekTopLevelLeave).
 *
 * What runs is the parse tree that step.c checked, never the statement's
 * text parsed again: a statement of the step may change how text is read
 * (SET standard_conforming_strings), and a statement the check read as a
 * string literal must not run as BEGIN.
 *
 * Between the two the backend holds no snapshot (CREATE INDEX
 * CONCURRENTLY waits for older ones, never for its own backend's), and a
 * cancel, a statement_timeout or a terminate of the caller stops the
 * statement as it stops any query.
 *
 * A concurrent index build that fails leaves an INVALID index behind.
 * trek drops it, and only it: the indexes whose pg_class row one of the
 * transactions the statement committed wrote (collect_xids).  Other
 * sessions' indexes, also those being built at that moment (INVALID until
 * they are done), are not the statement's.  Before a CREATE INDEX
 * CONCURRENTLY, an INVALID index of the same name on the same table that
 * nobody is building is taken for what an earlier attempt, cut short,
 * left (drop_earlier_attempt): nothing records who made it.
 *
 * Longer than most rooms: the repair of a failed concurrent index build
 * (which indexes the statement made, and dropping them under the build's
 * own locks) needs the transactions this room opens around the statement.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "parse.h"
#include "toplevel.h"

/* how often a statement notes which lock it waits for (see lockwait.c) */
#define TREK_WAIT_PROBE_MS 20

/*
 * The top-level transactions this backend committed while a concurrent
 * index build ran (collect_xids), in xids_cxt; xids_cxt is NULL when none
 * is being collected.
 */
static MemoryContext xids_cxt = NULL;
static TransactionId *xids = NULL;
static int	nxids = 0;
static int	maxxids = 0;
static bool xids_callback = false;

/* the statement being run, for error positions (statement_position) */
typedef struct TrekStatementText
{
	const char *text;			/* the whole file */
	int			start;			/* byte offsets of the statement in text */
	int			end;
} TrekStatementText;

/*
 * Commit the current transaction, leave SPI, and be outside any
 * transaction.  The caller's memory must not be SPI's (SPI_finish frees
 * that): trek_migrate() keeps its run in a context of its own.
 */
void
TrekTopLevelEnter(void)
{
	SPI_commit();
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	CommitTransactionCommand();
}

/*
 * Start a transaction and SPI again.  spicxt is where SPI_finish() will
 * return to: it must outlive the connection.
 */
void
TrekTopLevelLeave(MemoryContext spicxt)
{
	StartTransactionCommand();
	MemoryContextSwitchTo(spicxt);
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(spicxt);
}

/*
 * Transaction callback: while xids are collected, note the transaction
 * being committed.  Room is made before the commit (an error there just
 * rolls the transaction back), so that the commit itself allocates
 * nothing.  A transaction noted before its commit that then rolls back
 * wrote no row anyone sees.
 */
static void
collect_xids(XactEvent event, void *arg)
{
	TransactionId xid;

	if (xids_cxt == NULL)
		return;
	if (event == XACT_EVENT_PRE_COMMIT && nxids >= maxxids)
	{
		maxxids = Max(8, maxxids * 2);
		xids = xids == NULL ?
			MemoryContextAlloc(xids_cxt, maxxids * sizeof(TransactionId)) :
			repalloc(xids, maxxids * sizeof(TransactionId));
	}
	else if (event == XACT_EVENT_COMMIT && nxids < maxxids)
	{
		xid = GetTopTransactionIdIfAny();
		if (TransactionIdIsValid(xid))
			xids[nxids++] = xid;
	}
}

/* start collecting the transactions this backend commits, into cxt */
static void
collect_xids_start(MemoryContext cxt)
{
	if (!xids_callback)
	{
		RegisterXactCallback(collect_xids, NULL);
		xids_callback = true;
	}
	xids = NULL;
	nxids = maxxids = 0;
	xids_cxt = cxt;
}

/* stop collecting; what was collected stays until collect_xids_start */
static void
collect_xids_stop(void)
{
	xids_cxt = NULL;
}

/*
 * Did one of the collected transactions write this pg_class row last?  A
 * frozen row is older than any of them, whatever its xmin says.
 */
static bool
written_by_collected(HeapTuple tuple)
{
	TransactionId xmin = HeapTupleHeaderGetRawXmin(tuple->t_data);

	if (HeapTupleHeaderXminFrozen(tuple->t_data))
		return false;
	for (int i = 0; i < nxids; i++)
		if (TransactionIdEquals(xids[i], xmin))
			return true;
	return false;
}

/*
 * Is indexoid an INVALID index (not a partitioned one, which no concurrent
 * build leaves) of table heapoid?  With own, only if one of the collected
 * transactions wrote its pg_class row.  In a transaction.
 */
static bool
invalid_index_of(Oid indexoid, Oid heapoid, bool own)
{
	HeapTuple	tuple;
	bool		result;

	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tuple))
		return false;
	result = ((Form_pg_index) GETSTRUCT(tuple))->indrelid == heapoid &&
		!((Form_pg_index) GETSTRUCT(tuple))->indisvalid;
	ReleaseSysCache(tuple);
	if (!result)
		return false;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tuple))
		return false;
	result = ((Form_pg_class) GETSTRUCT(tuple))->relkind == RELKIND_INDEX &&
		(!own || written_by_collected(tuple));
	ReleaseSysCache(tuple);
	return result;
}

/*
 * Wait for the transactions that are changing the row of catalog whose
 * column attno (the key of unique index indexid) is oid, if any, until
 * none is.  A concurrent index build lets go of its table's lock just
 * before the transaction that marks the index valid commits.  In a
 * transaction, without a snapshot.
 */
static void
wait_for_row_changes(Oid catalog, Oid indexid, AttrNumber attno, Oid oid)
{
	for (;;)
	{
		Relation	rel;
		SysScanDesc scan;
		ScanKeyData key;
		SnapshotData dirty;
		TransactionId xwait = InvalidTransactionId;

		InitDirtySnapshot(dirty);
		ScanKeyInit(&key, attno, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(oid));
		rel = table_open(catalog, AccessShareLock);
		scan = systable_beginscan(rel, indexid, true, &dirty, 1, &key);
		while (HeapTupleIsValid(systable_getnext(scan)))
		{
			if (TransactionIdIsValid(dirty.xmin))
				xwait = dirty.xmin;
			else if (TransactionIdIsValid(dirty.xmax))
				xwait = dirty.xmax;
			if (TransactionIdIsValid(xwait))
				break;
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
		if (!TransactionIdIsValid(xwait))
			break;
		InvalidateCatalogSnapshot();
		XactLockTableWait(xwait, NULL, NULL, XLTW_None);
	}
	AcceptInvalidationMessages();
	InvalidateCatalogSnapshot();
}

/*
 * Offset of the pos'th character (1-based) of text, or -1 if text is
 * shorter.
 */
static int
char_offset(const char *text, int pos)
{
	int			off = 0;

	while (--pos > 0)
	{
		if (text[off] == '\0')
			return -1;
		off += pg_mblen(text + off);
	}
	return off;
}

/*
 * Error context callback while a statement runs: its parse tree's
 * positions are offsets into the whole file, so a position in an error
 * becomes one in the statement's own text, shown as the internal query
 * (as SPI shows one for the statements of other steps).
 */
static void
statement_position(void *arg)
{
	TrekStatementText *st = (TrekStatementText *) arg;
	int			pos = geterrposition();
	int			off;

	if (pos <= 0)
		return;
	errposition(0);
	off = char_offset(st->text, pos);
	if (off < st->start || off > st->end)
		return;
	internalerrquery(pnstrdup(st->text + st->start, st->end - st->start));
	internalerrposition(pg_mbstrlen_with_len(st->text + st->start,
											 off - st->start) + 1);
}

/*
 * Run one statement (raw, parsed from text) as exec_simple_query runs one:
 * analysed, planned and run in an unnamed portal, as a top-level command,
 * in an implicit transaction; text is the source the tree's positions are
 * offsets into.  The trees live in the caller's memory context, not in
 * the transaction's: statements such as CREATE INDEX CONCURRENTLY commit
 * and start transactions themselves.  Analysis may scribble on raw: the
 * caller passes a copy.
 */
static void
run_top_level(RawStmt *raw, const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	CommandTag	tag = CreateCommandTag(raw->stmt);
	bool		snapshot = false;
	List	   *queries;
	List	   *plans;
	Portal		portal;
	DestReceiver *dest;
	QueryCompletion qc;

	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	if (analyze_requires_snapshot(raw))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snapshot = true;
	}
	queries = pg_analyze_and_rewrite_fixedparams(raw, text, NULL, 0, NULL);
	plans = pg_plan_queries(queries, text, CURSOR_OPT_PARALLEL_OK, NULL);
	if (snapshot)
		PopActiveSnapshot();

	portal = CreatePortal("trek statement", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, text, tag, plans, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	dest = CreateDestReceiver(DestNone);
	InitializeQueryCompletion(&qc);
	(void) TrekPortalRun(portal, dest, &qc);
	dest->rDestroy(dest);
	PortalDrop(portal, false);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/*
 * Does stmt build an index concurrently (CREATE INDEX CONCURRENTLY, REINDEX
 * ... CONCURRENTLY), which leaves an INVALID index behind when it fails?
 */
static bool
builds_index_concurrently(Node *stmt)
{
	ListCell   *lc;

	if (IsA(stmt, IndexStmt))
		return ((IndexStmt *) stmt)->concurrent;
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

/*
 * In a PG_CATCH outside SPI, as PostgresMain recovers from an error but
 * staying in the CALL: the error being handled, copied into cxt, with its
 * transaction rolled back.
 */
ErrorData *
TrekTopLevelCatch(MemoryContext cxt)
{
	ErrorData  *edata;

	HOLD_INTERRUPTS();
	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	RESUME_INTERRUPTS();
	return edata;
}

/*
 * In a PG_CATCH: raise the error being handled again as a WARNING, after
 * rolling back its transaction; cxt is where it is copied to.
 */
static void
warn_instead(MemoryContext cxt)
{
	ErrorData  *edata = TrekTopLevelCatch(cxt);

	edata->elevel = WARNING;
	ThrowErrorData(edata);
}

/*
 * Drop index indexoid of table heapoid with DROP INDEX CONCURRENTLY, with
 * a NOTICE saying why, if it still is an INVALID index of that table (and,
 * with own, one the collected transactions wrote) once both are locked.
 *
 * Both are locked for the session with SHARE UPDATE EXCLUSIVE first, the
 * lock a concurrent index build or REINDEX holds from its start to its
 * end: holding it, nobody else is building an index of the table, and
 * nobody can rename or replace the index before the DROP finds it by name
 * (the DROP takes the same locks, which a backend never waits for itself).
 * The locks are taken without a snapshot: a concurrent build waits for
 * older snapshots, and would wait for this wait.  A lock_timeout while
 * waiting is an error like any other.
 *
 * Errors happen only inside transactions here, and rolling one back
 * releases the session's relation locks too: so only the path without an
 * error unlocks.
 */
static void
drop_invalid_index(Oid heapoid, Oid indexoid, bool own, const char *why)
{
	MemoryContext cxt = CurrentMemoryContext;
	LockRelId	heap;
	LockRelId	index;
	char	   *name = NULL;
	char	   *sql = NULL;
	RawStmt    *drop = NULL;

	heap.dbId = index.dbId = MyDatabaseId;
	heap.relId = heapoid;
	index.relId = indexoid;

	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	InvalidateCatalogSnapshot();
	LockRelationIdForSession(&heap, ShareUpdateExclusiveLock);
	LockRelationIdForSession(&index, ShareUpdateExclusiveLock);
	wait_for_row_changes(IndexRelationId, IndexRelidIndexId,
						 Anum_pg_index_indexrelid, indexoid);
	wait_for_row_changes(RelationRelationId, ClassOidIndexId,
						 Anum_pg_class_oid, indexoid);
	if (invalid_index_of(indexoid, heapoid, own))
	{
		name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(indexoid)),
										  get_rel_name(indexoid));
		sql = psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", name);
		drop = linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT));
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	if (drop != NULL)
		run_top_level(drop, sql);

	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	UnlockRelationIdForSession(&index, ShareUpdateExclusiveLock);
	UnlockRelationIdForSession(&heap, ShareUpdateExclusiveLock);
	if (drop != NULL)
		ereport(NOTICE,
				(errmsg("dropped invalid index %s, %s", name, why)));
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/*
 * Before CREATE INDEX CONCURRENTLY idxname ON rel: drop an INVALID index
 * of that name on that table, as an earlier attempt that was cut short
 * (a crash, a terminated backend) leaves it, so that the build can start
 * again.  Nothing says which session made such an index: the rule is the
 * same name, the same table, INVALID, and nobody building an index of the
 * table (drop_invalid_index waits for such a build, and then looks
 * again).  Only the table's owner, whom the build needs too, locks it.
 */
static void
drop_earlier_attempt(const char *idxname, RangeVar *rel)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			heapoid;
	Oid			indexoid = InvalidOid;

	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	heapoid = RangeVarGetRelid(rel, NoLock, true);
	if (OidIsValid(heapoid) && TrekRelationOwner(heapoid, GetUserId()))
	{
		indexoid = get_relname_relid(idxname, get_rel_namespace(heapoid));
		if (OidIsValid(indexoid) && !invalid_index_of(indexoid, heapoid, false))
			indexoid = InvalidOid;
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	if (OidIsValid(indexoid))
		drop_invalid_index(heapoid, indexoid, false,
						   "left by an earlier attempt, before building it again");
}

/* drop_invalid_index() of an index the failed statement left; errors warn */
static void
drop_or_warn(Oid heapoid, Oid indexoid)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		drop_invalid_index(heapoid, indexoid, true,
						   "left by the failed statement");
	}
	PG_CATCH();
	{
		warn_instead(cxt);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/*
 * After a concurrent index build failed: drop the INVALID indexes whose
 * pg_class row one of its committed transactions wrote (the index it
 * created; after REINDEX swapped the indexes, the old one), each on its
 * own; a drop that fails is a WARNING.
 */
static void
drop_own_invalid_indexes(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *indexes = NIL;
	List	   *heaps = NIL;
	ListCell   *li;
	ListCell   *lh;

	if (nxids == 0)
		return;
	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	{
		Relation	rel = table_open(IndexRelationId, AccessShareLock);
		SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL,
											  0, NULL);
		HeapTuple	tuple;

		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			Form_pg_index index = (Form_pg_index) GETSTRUCT(tuple);

			if (!index->indisvalid &&
				invalid_index_of(index->indexrelid, index->indrelid, true))
			{
				indexes = lappend_oid(indexes, index->indexrelid);
				heaps = lappend_oid(heaps, index->indrelid);
			}
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	forboth(li, indexes, lh, heaps)
		drop_or_warn(lfirst_oid(lh), lfirst_oid(li));
}

/*
 * Run one statement of a step (between TrekTopLevelEnter and
 * TrekTopLevelLeave): raw, the tree step.c checked, parsed from text (the
 * whole file), which error positions are turned into positions in the
 * statement's own text.  A CREATE INDEX CONCURRENTLY first drops an
 * INVALID index of the same name that an earlier attempt left
 * (drop_earlier_attempt); a failed concurrent index build has the INVALID
 * index it left dropped (drop_own_invalid_indexes).  probe is the timer
 * that notes which lock the statement waits for; after a lock timeout,
 * *holders is what holders_fn says of who held it (looked up in a
 * transaction of its own), else NULL.  Returns NULL when the statement
 * completed, else its error, copied into cxt; either way outside any
 * transaction again.  Everything else it allocates is in the current
 * memory context, which the caller resets after each statement.
 */
ErrorData *
TrekTopLevelRun(RawStmt *raw, const char *text, TimeoutId probe,
				char *(*holders_fn) (void), char **holders, MemoryContext cxt)
{
	MemoryContext stmtcxt = CurrentMemoryContext;
	bool		concurrent = builds_index_concurrently(raw->stmt);
	TrekStatementText st;
	ErrorContextCallback cb;
	ErrorData  *volatile edata = NULL;

	st.text = text;
	st.end = raw->stmt_len > 0 ? raw->stmt_location + raw->stmt_len :
		(int) strlen(text);
	st.start = TrekSkipBlanks(text, raw->stmt_location, st.end);

	*holders = NULL;
	PG_TRY();
	{
		enable_timeout_every(probe,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 TREK_WAIT_PROBE_MS),
							 TREK_WAIT_PROBE_MS);
		if (concurrent && IsA(raw->stmt, IndexStmt) &&
			((IndexStmt *) raw->stmt)->idxname != NULL)
			drop_earlier_attempt(((IndexStmt *) raw->stmt)->idxname,
								 ((IndexStmt *) raw->stmt)->relation);

		if (concurrent)
			collect_xids_start(stmtcxt);
		cb.callback = statement_position;
		cb.arg = &st;
		cb.previous = error_context_stack;
		error_context_stack = &cb;
		run_top_level(copyObject(raw), text);
		error_context_stack = cb.previous;
		collect_xids_stop();
		disable_timeout(probe, false);
	}
	PG_CATCH();
	{
		collect_xids_stop();
		disable_timeout(probe, false);
		edata = TrekTopLevelCatch(cxt);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(stmtcxt);

	if (edata != NULL &&
		(concurrent || edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE))
	{
		PG_TRY();
		{
			if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			{
				char	   *who;

				StartTransactionCommand();
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				PushActiveSnapshot(GetTransactionSnapshot());
				who = holders_fn();
				if (who != NULL)
					*holders = MemoryContextStrdup(stmtcxt, who);
				PopActiveSnapshot();
				SPI_finish();
				CommitTransactionCommand();
				MemoryContextSwitchTo(stmtcxt);
			}
			if (concurrent)
				drop_own_invalid_indexes();
		}
		PG_CATCH();
		{
			/* the statement's error is the one to raise: this one warns */
			warn_instead(stmtcxt);
		}
		PG_END_TRY();
	}
	xids = NULL;
	nxids = maxxids = 0;
	MemoryContextSwitchTo(stmtcxt);
	return edata;
}
