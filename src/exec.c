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
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "exec.h"
#include "folder.h"
#include "guard.h"
#include "parse.h"
#include "python.h"
#include "runs.h"
#include "state.h"
#include "toplevel.h"

#define TREK_LOCK_ADVICE "A plan runs in one transaction: raise max_locks_per_transaction, migrate in smaller plans by naming intermediate targets, or use CALL trek_migrate()."
#define TREK_ENUM_ADVICE "trek_execute() runs the whole plan in one transaction; CALL trek_migrate() commits each step, so a later step can use a value an earlier one added."

/* pauses between retries of a step that hit trek.lock_timeout */
#define TREK_RETRY_FIRST_MS 100
#define TREK_RETRY_MAX_MS 10000

/* how often a running step notes which lock it waits for, if any */
#define TREK_WAIT_PROBE_MS 20

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
	bool		top_level;		/* a step outside a transaction */
	int		   *error_line;		/* where to note the line of an error */
} TrekStepInfo;

/* how far a run got: for the record of its failure */
typedef struct TrekProgress
{
	int			step;			/* index of the step running, or -1 */
	int			line;			/* line of the last error in it, or 0 */
} TrekProgress;

/* set while a plan runs, to refuse trek_execute() from inside a migration */
static bool executing = false;

/* set while trek_migrate() runs: steps outside a transaction may run */
static bool migrating = false;

/*
 * set while trek_migrate() runs from another procedure or a DO block (not
 * from the top level): then it cannot leave its transaction for a step
 * outside one, since the caller's SPI connection would not survive that
 */
static bool migrating_nested = false;

/* set when an error trek may add advice to passes a step (amend_hint) */
static bool advice_pending = false;

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
	if (geterrcode() == ERRCODE_OUT_OF_MEMORY ||
		geterrcode() == ERRCODE_UNSAFE_NEW_ENUM_VALUE_USAGE)
		advice_pending = true;

	if (line == 0 && info->text != NULL && offset >= 0)
		line = TrekLineNumber(info->text, offset);
	if (info->error_line != NULL && geterrcode() != ERRCODE_SUCCESSFUL_COMPLETION)
		*info->error_line = line;
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
				 info->top_level ?
				 errdetail("In a step outside a transaction, each statement is a transaction of its own.") :
				 errdetail("trek runs each step inside a transaction: the whole plan in the caller's (trek_execute), or one per step (trek_migrate)."),
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
 * Check the SQL text of one migration and return its statements (RawStmt
 * nodes), before any of them runs.
 */
static List *
check_sql(TrekStepInfo *info, char *text, int len)
{
	int			valid;
	int			meta;
	List	   *stmts;
	ListCell   *lc;

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
	return stmts;
}

/*
 * Statement text sql, which check_sql() read as raw, must still read as
 * that one statement under the settings of now.
 */
static void
check_reads_the_same(TrekStepInfo *info, RawStmt *raw, const char *sql)
{
	List	   *now = raw_parser(sql, RAW_PARSE_DEFAULT);

	if (list_length(now) != 1 ||
		!equal(linitial_node(RawStmt, now)->stmt, raw->stmt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a statement of migration \"%s\" reads differently after an earlier statement changed how strings are read",
						info->file),
				 errdetail("standard_conforming_strings or backslash_quote changed since the file was checked; trek runs only the statements it checked."),
				 errhint("Set standard_conforming_strings in the migration's last statement, or in a migration of its own.")));
}

/*
 * Check and run the SQL text of one migration, statement by statement,
 * through SPI.
 */
static void
run_sql(TrekStepInfo *info, char *text, int len)
{
	List	   *stmts = check_sql(info, text, len);
	ListCell   *lc;
	MemoryContext stmtcxt;
	MemoryContext oldcxt;

	bool		std_strings = standard_conforming_strings;
	int			backslash = backslash_quote;

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

		/*
		 * SPI parses the text again.  If an earlier statement of the step
		 * changed how strings are read, that could be other statements than
		 * the ones checked: run it only if it still reads as it did.
		 */
		if (standard_conforming_strings != std_strings ||
			backslash_quote != backslash)
			check_reads_the_same(info, raw, sql);
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

static void run_sql_top_level(TrekStepInfo *info, char *text, int len,
							  List *stmts);

/*
 * Refuse to write trek's state on a standby (saying so, rather than
 * "read-only transaction") or in a read-only transaction.  what is the
 * function, to_do and them what the hint says it would do.
 */
void
TrekPreventIfReadOnly(const char *what, const char *to_do, const char *them)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s during recovery", what),
				 errhint("Connect to the primary server to %s; standbys receive %s through replication.",
						 to_do, them)));
	PreventCommandIfReadOnly(what);
}

/* is the track (at current) where plan goes?  Then say so: nothing to do */
static bool
already_there(TrekPlan *plan, const char *current)
{
	if (strcmp(current, plan->to) != 0)
		return false;
	ereport(NOTICE,
			(errmsg("track \"%s\" is already at revision \"%s\", nothing to do",
					plan->track, current)));
	return true;
}

/* the first step from "from" on that runs outside a transaction, or -1 */
static int
first_top_level_step(TrekPlan *plan, int from)
{
	for (int i = from; i < plan->nsteps; i++)
		if (plan->steps[i].no_transaction)
			return i;
	return -1;
}

/*
 * If a step from "from" on is in Python, check once that Python steps can
 * run here (TrekPythonCheck), before any step runs.
 */
static void
check_python_steps(TrekPlan *plan, int from)
{
	for (int i = from; i < plan->nsteps; i++)
		if (plan->steps[i].python)
		{
			TrekPythonCheck(plan->steps[i].file, i + 1, plan->nsteps);
			return;
		}
}

/*
 * Show other sessions what this backend does, in pg_stat_activity.query:
 * the track, the step and its file.
 */
static void
report_step(const char *call, TrekPlan *plan, int i)
{
	char	   *activity = psprintf("%s: track \"%s\", step %d of %d, %s",
									call, plan->track, i + 1, plan->nsteps,
									plan->steps[i].file);

	pgstat_report_activity(STATE_RUNNING, activity);
	pfree(activity);
}

/*
 * Re-read, check and run one step.
 */
static void
run_step(TrekPlan *plan, int i, TrekFolder *folder, TrekProgress *progress)
{
	TrekStep   *s = &plan->steps[i];
	TrekStepInfo info;
	ErrorContextCallback cb;
	char		sha256[TREK_SHA256_HEX_LEN + 1];
	char	   *text;
	int			len;
	bool		no_transaction;

	info.file = s->file;
	info.step = i + 1;
	info.nsteps = plan->nsteps;
	info.text = NULL;
	info.offset = -1;
	info.parsing = false;
	info.line = 0;
	info.top_level = false;
	info.error_line = &progress->line;
	progress->step = i;
	progress->line = 0;

	cb.callback = step_context;
	cb.arg = &info;
	cb.previous = error_context_stack;
	error_context_stack = &cb;

	text = TrekReadFile(folder, s->file, &len, sha256, &no_transaction);
	if (strcmp(sha256, s->sha256) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration file \"%s\" changed since the plan was made",
						s->file),
				 errdetail("The plan has SHA-256 %s, the file now has %s.",
						   s->sha256, sha256),
				 errhint("Make a new plan with trek_plan().")));

	if (no_transaction && !migrating)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("migration \"%s\" must run outside a transaction", s->file),
				 errdetail("Its first line is \"-- trek:no-transaction\", and trek_execute() runs the whole plan in one transaction."),
				 errhint("Apply the plan with CALL trek_migrate(...).")));
	if (no_transaction != s->no_transaction)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plan does not match migration \"%s\"", s->file),
				 errdetail("The file %s \"-- trek:no-transaction\", the plan says it %s.",
						   no_transaction ? "starts with" : "does not start with",
						   s->no_transaction ? "does" : "does not"),
				 errhint("Make a new plan with trek_plan().")));
	if (s->python)
		TrekPythonRun(s->file, text, len, &info.line);
	else if (no_transaction)
	{
		info.top_level = true;
		run_sql_top_level(&info, text, len, check_sql(&info, text, len));
	}
	else
		run_sql(&info, text, len);

	error_context_stack = cb.previous;
}

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

	if ((top = first_top_level_step(plan, 0)) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("trek_execute() cannot run migration \"%s\", which must run outside a transaction",
						plan->steps[top].file),
				 errdetail("Step %d of %d starts with \"-- trek:no-transaction\"; trek_execute() runs the whole plan in one transaction.",
						   top + 1, plan->nsteps),
				 errhint("Apply the plan with CALL trek_migrate(...).")));
	folder = TrekFolderOpen(plan->dir);
	check_python_steps(plan, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* one run per track at a time; then where is it, and whose is it? */
	TrekStateLock(plan->track, &lock, false);
	current = TrekStateRead(plan->track, &owned, &owner, callercxt);
	TrekStateCheckOwner(plan->track, owned, owner, "migrate");

	if (already_there(plan, current))
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
		report_step("trek_execute", plan, i);
		TrekRunsProgress(i, s->file);
		started[i] = GetCurrentTimestamp();
		run_step(plan, i, folder, progress);
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
	TrekStateRecord(plan, folder->path, 0, plan->nsteps, started, finished,
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
 * max_locks_per_transaction), and, in one transaction, an unsafe use of a
 * new enum value.  Called in PG_CATCH, in memory context cxt.
 */
static void
amend_hint(MemoryContext cxt, bool one_transaction)
{
	MemoryContext oldcxt;
	ErrorData  *edata;
	const char *advice = NULL;

	if (!advice_pending)
		return;
	advice_pending = false;
	oldcxt = MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	MemoryContextSwitchTo(oldcxt);
	if (edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY && edata->hint != NULL &&
		strstr(edata->hint, "max_locks_per_transaction") != NULL)
		advice = one_transaction ? TREK_LOCK_ADVICE : NULL;
	else if (edata->sqlerrcode == ERRCODE_UNSAFE_NEW_ENUM_VALUE_USAGE &&
			 one_transaction)
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

/* is a plan being run in this backend (a migration calling back)? */
bool
TrekExecuting(void)
{
	return executing;
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

	if (executing)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_execute() cannot be called from inside a migration"),
				 errhint("Run the other plan before or after this one, in the same transaction if need be.")));

	executing = true;
	advice_pending = false;
	PG_TRY();
	{
		result = execute_plan(plan, (bool *) &running, &progress);
	}
	PG_CATCH();
	{
		executing = false;
		if (running)
			record_failure(plan, &progress, cxt);
		amend_hint(cxt, true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	executing = false;
	return result;
}


/*
 * trek_migrate(): one step, one commit.
 *
 * The run holds the track's lock as a session lock from start to end, so
 * it serialises with trek_execute() and other runs although it commits
 * many times.  Each step runs in a subtransaction of its own transaction,
 * with lock_timeout set to trek.lock_timeout; its history row and the
 * run's progress commit with it.  A step that times out waiting for a lock
 * is rolled back and retried after a growing, jittered pause; any other
 * error rolls the step back, records the failure in the run's row,
 * commits that, and is raised again with its SQLSTATE and context.
 */

/* the lock the running step waits for, as last noted by wait_probe() */
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

/*
 * The backends holding lock tag (as pg_blocking_pids() would have named
 * them while a statement waited for it), with what they run, as far as the
 * current user may see it; NULL if none is known.  Needs SPI.
 */
char *
TrekLockHolders(const LOCKTAG *waited)
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

/*
 * Wait ms milliseconds, or less if interrupted (a cancel ends the run).
 */
static void
pause_ms(long ms)
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
 * while who (NULL: nobody known) held the lock: if retries are left, say so
 * in a NOTICE naming them and return
 * the pause before the next attempt, in ms; else put the blockers into the
 * error's hint (in cxt) and return -1.
 */
static long
lock_retry(ErrorData *edata, const char *who, const char *file, int i,
		   int nsteps, int *attempt, MemoryContext cxt)
{
	long		ms;

	if (*attempt >= TrekLockRetries)
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
					file, i + 1, nsteps, ms, *attempt, TrekLockRetries),
			 who != NULL ?
			 errdetail("Blocking: %s.", who) :
			 errdetail("No blocking session is left.")));
	return ms;
}

/*
 * A step outside a transaction, read and checked by run_step() in the
 * step's subtransaction, waiting for run_pending_top_level() to run it
 * outside any; in the step's memory, which commits do not free.
 */
typedef struct TrekPendingStep
{
	TrekStepInfo info;
	char	   *text;
	int			len;
	List	   *stmts;
} TrekPendingStep;

static TrekPendingStep *pending_top_level = NULL;

static void
run_sql_top_level(TrekStepInfo *info, char *text, int len, List *stmts)
{
	TrekPendingStep *p = palloc(sizeof(TrekPendingStep));

	Assert(migrating && !migrating_nested);
	p->info = *info;
	p->text = text;
	p->len = len;
	p->stmts = stmts;
	pending_top_level = p;
}

/* who held the lock the last statement timed out on (needs SPI) */
static char *
waited_lock_holders(void)
{
	return waited_valid ? TrekLockHolders(&waited_tag) : NULL;
}

/*
 * A statement of migration file released the advisory part of trek's lock
 * on track (state.c): refuse the step, since another session may now be
 * waiting with it for the rest of the lock.
 */
static void
lock_released(const char *file, const char *track)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("migration \"%s\" released trek's lock on track \"%s\"",
					file, track),
			 errdetail("pg_advisory_unlock_all() and DISCARD ALL release every advisory lock of the session, also the one trek_migrate() holds on the track for the whole run."),
			 errhint("Release only the advisory locks the migration took itself, with pg_advisory_unlock().")));
}

/*
 * Run pending step p outside a transaction: each statement as a
 * top-level command of its own, in this backend, outside any transaction
 * (toplevel.c), with lock_timeout set to trek.lock_timeout.  A statement
 * that times out waiting for a lock is retried as steps are; any other
 * error (a cancel too) stops the step, and is returned, copied into cxt,
 * as run_step_guarded() returns one.  Either way the backend is in a new
 * transaction with SPI connected when this returns; cxt is the run's
 * context, which SPI_finish() returns to.
 */
static ErrorData *
run_pending_top_level(TrekPendingStep *p, TrekTrackLock *lock,
					  const char *track, MemoryContext cxt)
{
	TrekStepInfo *info = &p->info;
	ErrorData  *volatile edata = NULL;
	char	   *volatile saved_lock_timeout = NULL;
	ErrorContextCallback cb;
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext stmtcxt;

	if (wait_probe_id == MAX_TIMEOUTS)
		wait_probe_id = RegisterTimeout(USER_TIMEOUT, wait_probe);

	/* what a statement allocates goes when it is done */
	stmtcxt = AllocSetContextCreate(oldcxt, "trek statement",
									ALLOCSET_DEFAULT_SIZES);
	TrekTopLevelEnter();
	MemoryContextSwitchTo(oldcxt);
	cb.callback = step_context;
	cb.arg = info;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	PG_TRY();
	{
		ListCell   *lc;

		if (TrekLockTimeout > 0)
		{
			char		value[32];

			saved_lock_timeout = pstrdup(GetConfigOption("lock_timeout", false, false));
			snprintf(value, sizeof(value), "%d", TrekLockTimeout);
			SetConfigOption("lock_timeout", value, PGC_USERSET, PGC_S_SESSION);
		}

		/*
		 * Each statement runs as the tree check_sql() made of it: parsing
		 * its text again could read it otherwise, after a statement of the
		 * step changed standard_conforming_strings.
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

				waited_valid = false;
				edata = TrekTopLevelRun(raw, p->text, wait_probe_id,
										waited_lock_holders, &who, cxt);
				MemoryContextSwitchTo(stmtcxt);
				if (!TrekStateLockHeld(lock))
				{
					/* no retry then; the statement's own error goes first */
					if (edata == NULL)
						lock_released(info->file, track);
					break;
				}
				if (edata == NULL || edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
					break;
				ms = lock_retry(edata, who, info->file, info->step - 1,
								info->nsteps, &attempt, cxt);
				if (ms < 0)
					break;
				FreeErrorData(edata);
				edata = NULL;
				pause_ms(ms);
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

/* a trek_migrate() run */
typedef struct TrekMigrateRun
{
	TrekPlan   *plan;			/* NULL until planned or given */
	TrekTrackLock lock;			/* the track's, held for the whole run */
	int64		id;				/* its row in trek.runs, or -1 */
	bool		ended;			/* its row says how it ended */
	TrekProgress progress;
	MemoryContext cxt;			/* the run's memory */
} TrekMigrateRun;

/*
 * Run step i in a subtransaction, with trek.lock_timeout and the wait
 * probe on.  Returns NULL on success, else the error (copied into cxt),
 * with the subtransaction rolled back.
 */
static ErrorData *
run_step_guarded(TrekMigrateRun *run, int i, TrekFolder *folder)
{
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *volatile edata = NULL;

	waited_valid = false;
	if (wait_probe_id == MAX_TIMEOUTS)
		wait_probe_id = RegisterTimeout(USER_TIMEOUT, wait_probe);

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
		enable_timeout_every(wait_probe_id,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 TREK_WAIT_PROBE_MS),
							 TREK_WAIT_PROBE_MS);
		run_step(run->plan, i, folder, &run->progress);
		disable_timeout(wait_probe_id, false);
		if (!TrekStateLockHeld(&run->lock))
			lock_released(run->plan->steps[i].file, run->plan->track);
		AtEOXact_GUC(true, nest);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		disable_timeout(wait_probe_id, false);
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
		MemoryContext oldcxt;

		for (;;)
		{
			CHECK_FOR_INTERRUPTS();
			oldcxt = MemoryContextSwitchTo(stepcxt);
			run->progress.step = i;
			run->progress.line = 0;
			folder = TrekFolderOpen(plan->dir);
			report_step("trek_migrate", plan, i);
			started = GetCurrentTimestamp();
			edata = run_step_guarded(run, i, folder);
			top_level = pending_top_level != NULL;
			if (top_level)
			{
				TrekPendingStep *p = pending_top_level;

				/* read and checked: now outside a transaction */
				pending_top_level = NULL;
				TrekFolderClose(folder);
				if (edata == NULL)
					edata = run_pending_top_level(p, &run->lock, plan->track,
												  run->cxt);
				folder = TrekFolderOpen(plan->dir);
			}
			MemoryContextSwitchTo(oldcxt);
			if (edata == NULL)
				break;

			TrekFolderClose(folder);
			/* a step outside a transaction retried its statements itself */
			if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && !top_level &&
				TrekStateLockHeld(&run->lock))
			{
				long		ms = lock_retry(edata,
											waited_lock_holders(),
											s->file, i, plan->nsteps,
											&attempt, run->cxt);

				if (ms >= 0)
				{
					FreeErrorData(edata);
					commit_and_continue();
					pause_ms(ms);
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
		TrekStateRecord(plan, folder->path, i, 1, &started, &finished, owned);
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
migrate_locked(TrekMigrateRun *run, TrekPlan *given, const char *dir,
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
		plan = TrekPlanMake(dir, target, direction, track);
		PopActiveSnapshot();
	}
	folder = TrekFolderOpen(plan->dir);
	current = TrekStateRead(plan->track, &owned, &owner, run->cxt);
	TrekStateCheckOwner(plan->track, owned, owner, "migrate");

	if (already_there(plan, current))
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
	check_python_steps(plan, first);
	if (migrating_nested && (top = first_top_level_step(plan, first)) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("trek_migrate() cannot run migration \"%s\" from inside a procedure or a DO block",
						plan->steps[top].file),
				 errdetail("Step %d of %d starts with \"-- trek:no-transaction\": its statements run as top-level commands, which only a CALL at the top level can do.",
						   top + 1, plan->nsteps),
				 errhint("Call trek_migrate() directly: CALL trek_migrate(...) from the client or a pg_cron job.")));

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
 * CALL trek_migrate(): run given (a plan from trek_plan), or plan from dir
 * to target and run that, one step per transaction.  atomic says whether
 * the call came from a context that cannot commit (a transaction block).
 */
void
TrekMigrate(bool atomic, TrekPlan *given, const char *dir, const char *target,
			const char *direction, const char *track)
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
	if (executing)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_migrate() cannot be called from inside a migration")));

	/*
	 * The run lives in a context of its own, not in SPI's: a step outside
	 * a transaction leaves SPI for a while (run_pending_top_level).
	 */
	migrating_nested = SPI_inside_nonatomic_context();
	run = MemoryContextAllocZero(CurrentMemoryContext, sizeof(TrekMigrateRun));
	run->cxt = AllocSetContextCreate(CurrentMemoryContext, "trek_migrate",
									 ALLOCSET_DEFAULT_SIZES);
	run->id = -1;
	run->progress.step = -1;
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(run->cxt);

	/*
	 * Wait for the track without a snapshot: CALL runs with one, and a step
	 * outside a transaction that builds an index concurrently waits for
	 * every older snapshot, also for ours while we wait for it.  Committing
	 * the (empty) transaction lets go of it.  A cancel while waiting here
	 * leaves nothing to release.
	 */
	commit_and_continue();
	InvalidateCatalogSnapshot();
	TrekStateLock(locked, &run->lock, true);
	executing = true;
	migrating = true;
	PG_TRY();
	{
		migrate_locked(run, given, dir, target, direction, track);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		executing = false;
		migrating = false;
		migrating_nested = false;
		pending_top_level = NULL;
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
	executing = false;
	migrating = false;
	migrating_nested = false;
	TrekStateUnlock(&run->lock);
	SPI_finish();
	MemoryContextSwitchTo(callercxt);
	MemoryContextDelete(run->cxt);
}
