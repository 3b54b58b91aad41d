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
 * What runs is the parse tree that exec.c checked, never the statement's
 * text parsed again: a statement of the step may change how text is read
 * (SET standard_conforming_strings), and a statement the check read as a
 * string literal must not run as BEGIN.
 *
 * Between the two the backend holds no snapshot (CREATE INDEX
 * CONCURRENTLY waits for older ones, never for its own backend's), and a
 * cancel, a statement_timeout or a terminate of the caller stops the
 * statement as it stops any query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "parse.h"
#include "toplevel.h"

/* how often a statement notes which lock it waits for (see exec.c) */
#define TREK_WAIT_PROBE_MS 20

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
#if PG_VERSION_NUM >= 180000
	(void) PortalRun(portal, FETCH_ALL, true, dest, dest, &qc);
#else
	(void) PortalRun(portal, FETCH_ALL, true, true, dest, dest, &qc);
#endif
	dest->rDestroy(dest);
	PortalDrop(portal, false);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/* run_top_level() of the one statement in sql, which trek wrote */
static void
run_top_level_text(const char *sql)
{
	run_top_level(linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT)),
				  sql);
}

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
			run_top_level_text(psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", name));
			ereport(NOTICE,
					(errmsg("dropped invalid index %s, %s", name, why)));
		}
		PG_CATCH();
		{
			warn_instead(cxt);
		}
		PG_END_TRY();
	}
}


/*
 * Run one statement of a step (between TrekTopLevelEnter and
 * TrekTopLevelLeave): raw, the tree exec.c checked, parsed from text (the
 * whole file), which error positions are turned into positions in the
 * statement's own text.  A CREATE INDEX CONCURRENTLY first drops an
 * INVALID index of the same name that an earlier attempt left; a failed
 * concurrent index build has the INVALID index it left dropped.  probe is
 * the timer that notes which lock the statement waits for; after a lock
 * timeout, *holders is what holders_fn says of who held it (looked up in
 * a transaction of its own), else NULL.  Returns NULL when the statement
 * completed, else its error, copied into cxt; either way outside any
 * transaction again.  Everything else it allocates is in the current
 * memory context, which the caller resets after each statement.
 */
ErrorData *
TrekTopLevelRun(RawStmt *raw, const char *text, TimeoutId probe,
				char *(*holders_fn) (void), char **holders, MemoryContext cxt)
{
	MemoryContext stmtcxt = CurrentMemoryContext;
	volatile bool concurrent = false;
	List	   *volatile before = NIL;
	ErrorData  *volatile edata = NULL;
	TrekStatementText st;

	st.text = text;
	st.end = raw->stmt_len > 0 ? raw->stmt_location + raw->stmt_len :
		(int) strlen(text);
	st.start = TrekSkipBlanks(text, raw->stmt_location, st.end);

	PG_TRY();
	{
		char	   *idxname = NULL;
		RangeVar   *rel = NULL;
		ErrorContextCallback cb;

		concurrent = builds_index_concurrently(raw->stmt, &idxname, &rel);
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
									 2, argtypes, args, stmtcxt),
						 NIL, "left by an earlier attempt, before building it again");
		}
		if (concurrent)
			before = query_names(INVALID_INDEXES_SQL, 0, NULL, NULL, stmtcxt);

		enable_timeout_every(probe,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 TREK_WAIT_PROBE_MS),
							 TREK_WAIT_PROBE_MS);
		cb.callback = statement_position;
		cb.arg = &st;
		cb.previous = error_context_stack;
		error_context_stack = &cb;
		run_top_level(copyObject(raw), text);
		error_context_stack = cb.previous;
		disable_timeout(probe, false);
	}
	PG_CATCH();
	{
		disable_timeout(probe, false);
		edata = TrekTopLevelCatch(cxt);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(stmtcxt);

	*holders = NULL;
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
				drop_invalid(query_names(INVALID_INDEXES_SQL, 0, NULL, NULL, stmtcxt),
							 (List *) before, "left by the failed statement");
		}
		PG_CATCH();
		{
			/* the statement's error is the one to raise: this one warns */
			warn_instead(stmtcxt);
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(stmtcxt);
	return edata;
}
