/*-------------------------------------------------------------------------
 *
 * exec.c
 *	  Running plans through SPI and keeping trek.history.
 *
 * Migrations run with the caller's rights, statement by statement, so a
 * failing statement can be named by file and line.  trek's own state is
 * state.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "exec.h"
#include "folder.h"
#include "parse.h"
#include "python.h"
#include "state.h"

#define TREK_LOCK_ADVICE "A plan runs in one transaction: raise max_locks_per_transaction, migrate in smaller plans by naming intermediate targets, or use CALL trek_migrate()."

/* what the error context callback knows about the step being run */
typedef struct TrekStepInfo
{
	const char *file;
	int			step;
	int			nsteps;
	const char *text;			/* file contents once read, else NULL */
	int			offset;			/* byte offset of the current statement */
	bool		parsing;		/* inside raw_parser */
	int			line;			/* line a Python step failed at, else 0 */
} TrekStepInfo;

/* set while a plan runs, to refuse trek_execute() from inside a migration */
static bool executing = false;

/* set when an error of class 53200 passes a step: maybe a full lock table */
static bool out_of_memory_seen = false;

/* byte offset of the pos'th character (0-based) of text */
static int
char_offset(const char *text, int pos)
{
	int			off = 0;

	while (pos-- > 0 && text[off] != '\0')
		off += pg_mblen(text + off);
	return off;
}

/*
 * A syntax error of a migration, reported as CREATE EXTENSION reports one
 * in its script: the statement that holds the error becomes the internal
 * query with the position inside it, so that psql shows that statement's
 * line and a caret; and the position is no longer taken for one in the
 * caller's query.  Returns the byte offset of the error in the file.
 */
static int
report_syntax_position(TrekStepInfo *info, int pos)
{
	int			offset = char_offset(info->text, pos - 1);
	int			len = strlen(info->text);
	int			start;
	int			end;
	char	   *stmt;

	TrekStatementBounds(info->text, len, offset, standard_conforming_strings,
						&start, &end);
	stmt = pnstrdup(info->text + start, end - start);
	errposition(0);
	internalerrquery(stmt);
	internalerrposition(pg_mbstrlen_with_len(info->text + start,
											 offset - start) + 1);
	return offset;
}

static void
step_context(void *arg)
{
	TrekStepInfo *info = (TrekStepInfo *) arg;
	int			offset = info->offset;
	int			line = info->line;

	if (info->parsing)
	{
		int			pos = geterrposition();

		if (pos > 0)
			offset = report_syntax_position(info, pos);
	}
	if (geterrcode() == ERRCODE_OUT_OF_MEMORY)
		out_of_memory_seen = true;

	if (line == 0 && info->text != NULL && offset >= 0)
		line = TrekLineNumber(info->text, offset);
	if (line > 0)
		errcontext("migration \"%s\", step %d of %d, line %d",
				   info->file, info->step, info->nsteps, line);
	else
		errcontext("migration \"%s\", step %d of %d",
				   info->file, info->step, info->nsteps);
}

/*
 * Refuse statements that cannot run inside trek's transaction through SPI.
 */
static void
check_statement(TrekStepInfo *info, RawStmt *raw, int len)
{
	Node	   *stmt = raw->stmt;

	info->offset = TrekSkipBlanks(info->text, raw->stmt_location, len);
	if (IsA(stmt, TransactionStmt))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("transaction control statements are not allowed in migrations"),
				 errdetail("trek runs the whole plan in one transaction, the caller's."),
				 errhint("Remove BEGIN, COMMIT, ROLLBACK and SAVEPOINT statements from \"%s\".",
						 info->file)));
	if (IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->filename == NULL &&
		!((CopyStmt *) stmt)->is_program)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("COPY %s is not supported in migrations",
						((CopyStmt *) stmt)->is_from ? "FROM STDIN" : "TO STDOUT"),
				 errhint("Load data with INSERT statements, or COPY from a file on the server.")));
}

/*
 * A UTF-8 byte order mark at the start of a file is not part of the SQL.
 * In a UTF8 database it is the encoding's own mark, and in SQL_ASCII any
 * bytes go; in other encodings those three bytes mean other characters,
 * so the file is refused with an error that says what they are.
 */
static void
skip_byte_order_mark(TrekStepInfo *info, char *text, int len)
{
	int			encoding = GetDatabaseEncoding();

	if (len < 3 || memcmp(text, "\xEF\xBB\xBF", 3) != 0)
		return;
	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
	{
		memset(text, ' ', 3);
		return;
	}
	info->offset = 0;
	ereport(ERROR,
			(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
			 errmsg("migration \"%s\" starts with a UTF-8 byte order mark",
					info->file),
			 errdetail("The database encoding is \"%s\", not UTF8.",
					   GetDatabaseEncodingName()),
			 errhint("Save the file in the database encoding, without a byte order mark.")));
}

/*
 * Check and run the SQL text of one migration, statement by statement.
 */
static void
run_sql(TrekStepInfo *info, char *text, int len)
{
	int			valid;
	int			meta;
	List	   *stmts;
	ListCell   *lc;
	MemoryContext stmtcxt;
	MemoryContext oldcxt;

	info->text = text;
	skip_byte_order_mark(info, text, len);
	valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), text, len);
	if (valid < len)
	{
		info->offset = valid;
		ereport(ERROR,
				(errcode(text[valid] == '\0' ? ERRCODE_UNTRANSLATABLE_CHARACTER :
						 ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("migration \"%s\" is not valid in encoding \"%s\"",
						info->file, GetDatabaseEncodingName()),
				 errdetail("%s at byte offset %d.",
						   text[valid] == '\0' ? "A NUL byte" : "An invalid byte sequence",
						   valid),
				 errhint("Save the file in the database encoding.")));
	}

	/* strings are scanned as the server will scan them, in this session */
	meta = TrekFindMetaCommand(text, len, standard_conforming_strings);
	if (meta >= 0)
	{
		info->offset = meta;
		if (meta + 1 < len && text[meta + 1] == '.')
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("COPY FROM STDIN is not supported in migrations"),
					 errhint("Load data with INSERT statements, or COPY from a file on the server.")));
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("psql meta-commands are not allowed in migrations"),
				 errhint("trek runs migrations in the server, not in psql: replace backslash commands in \"%s\" with SQL.",
						 info->file)));
	}

	info->parsing = true;
	stmts = raw_parser(text, RAW_PARSE_DEFAULT);
	info->parsing = false;

	foreach(lc, stmts)
	{
		CHECK_FOR_INTERRUPTS();
		check_statement(info, lfirst_node(RawStmt, lc), len);
	}

	stmtcxt = AllocSetContextCreate(CurrentMemoryContext, "trek statement",
									ALLOCSET_DEFAULT_SIZES);
	foreach(lc, stmts)
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);
		int			start = raw->stmt_location;
		int			slen = raw->stmt_len > 0 ? raw->stmt_len : len - start;
		char	   *sql;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		info->offset = TrekSkipBlanks(text, start, start + slen);
		oldcxt = MemoryContextSwitchTo(stmtcxt);
		sql = pnstrdup(text + info->offset, start + slen - info->offset);
		rc = SPI_execute(sql, false, 0);
		if (rc < 0)
			elog(ERROR, "could not run statement: %s",
				 SPI_result_code_string(rc));
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);
		MemoryContextReset(stmtcxt);
	}
	MemoryContextDelete(stmtcxt);
}

/*
 * Re-read, check and run one step.
 */
static void
run_step(TrekPlan *plan, int i, TrekFolder *folder)
{
	TrekStep   *s = &plan->steps[i];
	TrekStepInfo info;
	ErrorContextCallback cb;
	char		sha256[TREK_SHA256_HEX_LEN + 1];
	char	   *text;
	int			len;

	info.file = s->file;
	info.step = i + 1;
	info.nsteps = plan->nsteps;
	info.text = NULL;
	info.offset = -1;
	info.parsing = false;
	info.line = 0;

	cb.callback = step_context;
	cb.arg = &info;
	cb.previous = error_context_stack;
	error_context_stack = &cb;

	text = TrekReadFile(folder, s->file, &len, sha256);
	if (strcmp(sha256, s->sha256) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration file \"%s\" changed since the plan was made",
						s->file),
				 errdetail("The plan has SHA-256 %s, the file now has %s.",
						   s->sha256, sha256),
				 errhint("Make a new plan with trek_plan().")));

	if (s->python)
		TrekPythonRun(s->file, text, len, &info.line);
	else
		run_sql(&info, text, len);

	error_context_stack = cb.previous;
}

/*
 * Run a plan in the caller's transaction and return the revision the track
 * is at afterwards.
 */
static char *
execute_plan(TrekPlan *plan)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext stepcxt;
	TrekFolder *folder;
	char	   *current;
	bool		owned;
	Oid			owner;
	TimestampTz *started;
	TimestampTz *finished;

	/* on a hot standby, say so rather than "read-only transaction" */
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s during recovery", "trek_execute()"),
				 errhint("Connect to the primary server to apply migrations; standbys receive them through replication.")));
	PreventCommandIfReadOnly("trek_execute()");

	folder = TrekFolderOpen(plan->dir);
	for (int i = 0; i < plan->nsteps; i++)
	{
		if (plan->steps[i].python)
		{
			TrekPythonCheck(plan->steps[i].file, i + 1, plan->nsteps);
			break;
		}
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* one run per track at a time; then where is it, and whose is it? */
	TrekStateLock(plan->track, false);
	current = TrekStateRead(plan->track, &owned, &owner, callercxt);
	TrekStateCheckOwner(plan->track, owned, owner, "migrate");

	if (strcmp(current, plan->to) == 0)
	{
		ereport(NOTICE,
				(errmsg("track \"%s\" is already at revision \"%s\", nothing to do",
						plan->track, current)));
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

	started = palloc(plan->nsteps * sizeof(TimestampTz));
	finished = palloc(plan->nsteps * sizeof(TimestampTz));
	stepcxt = AllocSetContextCreate(CurrentMemoryContext, "trek step",
									ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < plan->nsteps; i++)
	{
		TrekStep   *s = &plan->steps[i];
		MemoryContext oldcxt = MemoryContextSwitchTo(stepcxt);

		CHECK_FOR_INTERRUPTS();
		started[i] = GetCurrentTimestamp();
		run_step(plan, i, folder);
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
	TrekStateRecord(plan, folder->path, 0, plan->nsteps, started, finished,
					owned);
	TrekFolderClose(folder);

	SPI_finish();
	return pstrdup(plan->to);
}

/*
 * A full lock table is reported as "out of shared memory" with PostgreSQL's
 * hint to raise max_locks_per_transaction.  trek adds its own advice to
 * that hint, keeping PostgreSQL's words, and lets the error go on.  Called
 * in PG_CATCH, in memory context cxt.
 */
static void
amend_lock_hint(MemoryContext cxt)
{
	MemoryContext oldcxt;
	ErrorData  *edata;

	if (!out_of_memory_seen)
		return;
	out_of_memory_seen = false;
	oldcxt = MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	MemoryContextSwitchTo(oldcxt);
	if (edata->sqlerrcode != ERRCODE_OUT_OF_MEMORY || edata->hint == NULL ||
		strstr(edata->hint, "max_locks_per_transaction") == NULL)
	{
		FreeErrorData(edata);
		return;
	}
	FlushErrorState();
	edata->hint = MemoryContextStrdup(cxt, psprintf("%s %s", edata->hint,
													TREK_LOCK_ADVICE));
	ReThrowError(edata);
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

	if (executing)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_execute() cannot be called from inside a migration"),
				 errhint("Run the other plan before or after this one, in the same transaction if need be.")));

	executing = true;
	out_of_memory_seen = false;
	PG_TRY();
	{
		result = execute_plan(plan);
	}
	PG_CATCH();
	{
		executing = false;
		amend_lock_hint(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	executing = false;
	return result;
}
