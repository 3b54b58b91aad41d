/*-------------------------------------------------------------------------
 *
 * step.c
 *	  Running one step of a plan: its file read again, checked and run.
 *
 * A step's file is read again and compared with the plan's SHA-256, its
 * text checked as a whole (encoding, psql meta-commands, transaction
 * control) and then run statement by statement through SPI, so that a
 * failing statement is named by file and line (TrekStepContext, after
 * commands/extension.c's script_error_callback).  A step outside a
 * transaction is only read and checked here; notxn.c runs it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "folder.h"
#include "format.h"
#include "parse.h"
#include "python.h"
#include "step.h"

/*
 * Set while this backend runs a plan.  A migration's own SQL may call
 * trek_execute(), trek_migrate() or trek_stamp() again, and the inner call
 * would see the track half-way through a step; PostgreSQL passes nothing
 * from the outer call to the inner one, so the backend notes it here.
 */
static bool executing = false;

bool
TrekExecuting(void)
{
	return executing;
}

void
TrekSetExecuting(bool value)
{
	executing = value;
}

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

void
TrekStepContext(void *arg)
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

/* BEGIN or START TRANSACTION without options, or COMMIT (END) without CHAIN */
static bool
is_plain_transaction(Node *stmt, bool begin)
{
	TransactionStmt *t = (TransactionStmt *) stmt;

	if (!IsA(stmt, TransactionStmt))
		return false;
	if (begin)
		return (t->kind == TRANS_STMT_BEGIN || t->kind == TRANS_STMT_START) &&
			t->options == NIL;
	return t->kind == TRANS_STMT_COMMIT && !t->chain;
}

/*
 * stmts without the BEGIN and COMMIT of each group a BEGIN opens and a
 * COMMIT closes.  What is left of transaction control (ROLLBACK, a COMMIT
 * without BEGIN, SAVEPOINT, a BEGIN never closed) check_statement()
 * refuses.
 */
static List *
drop_begin_commit(List *stmts)
{
	List	   *out = NIL;
	ListCell   *lc;
	RawStmt    *open = NULL;

	foreach(lc, stmts)
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);

		if (open == NULL && is_plain_transaction(raw->stmt, true))
		{
			open = raw;
			continue;
		}
		if (open != NULL && is_plain_transaction(raw->stmt, false))
		{
			open = NULL;
			continue;
		}
		out = lappend(out, raw);
	}
	if (open != NULL)
		out = lappend(out, open);	/* never closed: refused */
	return out;
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
List *
TrekStepParse(TrekStepInfo *info, char *text, int len)
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

	/*
	 * Another tool's migration with BEGIN ... COMMIT of its own (the whole
	 * file, or groups of its statements) commits them all when its tool runs
	 * it: here the step's transaction does.
	 */
	if (info->unwrap)
		stmts = drop_begin_commit(stmts);

	foreach(lc, stmts)
	{
		CHECK_FOR_INTERRUPTS();
		check_statement(info, lfirst_node(RawStmt, lc), len);
	}
	return stmts;
}

/*
 * Statement text sql, which TrekStepParse() read as raw, must still read as
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
 * through SPI.  hook, if not NULL, is called before and after each
 * statement (trek_rehearse() watches what each one does).
 */
void
TrekStepRunSql(TrekStepInfo *info, char *text, int len,
			   TrekStatementHook hook, void *arg)
{
	List	   *stmts = TrekStepParse(info, text, len);
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
		if (hook != NULL)
			hook(arg, info, raw, false);
		rc = SPI_execute(sql, false, 0);
		if (rc < 0)
			elog(ERROR, "could not run statement: %s",
				 SPI_result_code_string(rc));
		if (hook != NULL)
			hook(arg, info, raw, true);
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);
		MemoryContextReset(stmtcxt);
	}
	MemoryContextDelete(stmtcxt);
}

/* is the track (at current) where plan goes?  Then say so: nothing to do */
bool
TrekStepAlreadyThere(TrekPlan *plan, const char *current)
{
	if (strcmp(current, plan->to) != 0)
		return false;
	/* Flyway's repeatable migrations go from a revision to itself */
	if (plan->nsteps > 0 && strcmp(current, plan->from) == 0)
		return false;
	ereport(NOTICE,
			(errmsg("track \"%s\" is already at revision \"%s\", nothing to do",
					plan->track, current)));
	return true;
}

/* the first step from "from" on that runs outside a transaction, or -1 */
int
TrekStepFirstOutside(TrekPlan *plan, int from)
{
	for (int i = from; i < plan->nsteps; i++)
		if (plan->steps[i].no_transaction)
			return i;
	return -1;
}

/* why step i of plan runs outside a transaction, for messages */
char *
TrekStepWhyOutside(TrekPlan *plan, int i)
{
	if (plan->format == TREK_FORMAT_TREK)
		return psprintf(_("Step %d of %d starts with \"-- trek:no-transaction\""),
						i + 1, plan->nsteps);
	return psprintf(_("Step %d of %d runs outside a transaction, as %s runs it"),
					i + 1, plan->nsteps, TrekFormatTitle(plan->format));
}

/*
 * If a step from "from" on is in Python, check once that Python steps can
 * run here (TrekPythonCheck), before any step runs.
 */
void
TrekStepCheckPython(TrekPlan *plan, int from)
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
void
TrekStepReport(const char *call, TrekPlan *plan, int i)
{
	char	   *activity = psprintf("%s: track \"%s\", step %d of %d, %s",
									call, plan->track, i + 1, plan->nsteps,
									plan->steps[i].file);

	pgstat_report_activity(STATE_RUNNING, activity);
	pfree(activity);
}

/*
 * Run a step inside the caller's transaction.  A statement that cannot run
 * in a transaction block (PostgreSQL's 25001, as CREATE INDEX CONCURRENTLY
 * raises it) gets a hint naming what runs it outside one; the error is
 * otherwise raised again as it was.
 */
static void
run_in_transaction(TrekStep *s, TrekStepInfo *info, char *text, int len)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		if (s->python)
			TrekPythonRun(s->file, text, len, &info->line);
		else
			TrekStepRunSql(info, text, len, NULL, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_ACTIVE_SQL_TRANSACTION ||
			edata->hint != NULL || s->python)
		{
			FreeErrorData(edata);
			PG_RE_THROW();
		}
		FlushErrorState();
		edata->hint = pstrdup(_("Make \"-- trek:no-transaction\" the migration's first line, and apply it with CALL trek_migrate(...), which runs such a migration outside a transaction."));
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * Start info for step i of plan, with its error context pushed in cb (the
 * caller pops it), and read the step's file from folder again: checked
 * against the plan's SHA-256 and, for another tool's folder, cut to the
 * part the step runs.  Returns the text (len bytes), and whether it runs
 * outside a transaction (as the file and the plan say: checked to agree),
 * which only a caller that may leave its transaction (may_leave) accepts.
 */
char *
TrekStepRead(TrekPlan *plan, int i, TrekFolder *folder, TrekStepInfo *info,
			 ErrorContextCallback *cb, int *error_line, bool may_leave,
			 int *len, bool *no_transaction)
{
	TrekStep   *s = &plan->steps[i];
	char		sha256[TREK_SHA256_HEX_LEN + 1];
	char	   *text;

	info->file = s->file;
	info->step = i + 1;
	info->nsteps = plan->nsteps;
	info->text = NULL;
	info->offset = -1;
	info->parsing = false;
	info->line = 0;
	info->top_level = false;
	info->unwrap = false;
	info->error_line = error_line;

	cb->callback = TrekStepContext;
	cb->arg = info;
	cb->previous = error_context_stack;
	error_context_stack = cb;

	text = TrekReadFile(folder, s->file, len, sha256, no_transaction);
	if (strcmp(sha256, s->sha256) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration file \"%s\" changed since the plan was made",
						s->file),
				 errdetail("The plan has SHA-256 %s, the file now has %s.",
						   s->sha256, sha256),
				 errhint("Make a new plan with trek_plan().")));
	if (plan->format != TREK_FORMAT_TREK)
	{
		/* the part the step runs; what files beside it decide, the plan has */
		*no_transaction = s->no_transaction;
		TrekFormatStep(plan->format, NULL, s->file,
					   plan->direction == TREK_UP, text, *len, no_transaction);
		info->unwrap = !*no_transaction;
	}
	if (*no_transaction && !may_leave)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("migration \"%s\" must run outside a transaction", s->file),
				 plan->format == TREK_FORMAT_TREK ?
				 errdetail("Its first line is \"-- trek:no-transaction\", and trek_execute() runs the whole plan in one transaction.") :
				 errdetail("%s runs it outside a transaction, and trek_execute() runs the whole plan in one transaction.",
						   TrekFormatTitle(plan->format)),
				 errhint("Apply the plan with CALL trek_migrate(...).")));
	if (*no_transaction != s->no_transaction && plan->format != TREK_FORMAT_TREK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plan does not match migration \"%s\"", s->file),
				 errdetail("The plan says it runs %s a transaction, the file says it runs %s one.",
						   s->no_transaction ? "outside" : "inside",
						   *no_transaction ? "outside" : "inside"),
				 errhint("Make a new plan with trek_plan().")));
	if (*no_transaction && !s->no_transaction)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plan does not match migration \"%s\"", s->file),
				 errdetail("The file starts with \"-- trek:no-transaction\", the plan says it does not."),
				 errhint("Make a new plan with trek_plan().")));
	if (!*no_transaction && s->no_transaction)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plan does not match migration \"%s\"", s->file),
				 errdetail("The file does not start with \"-- trek:no-transaction\", the plan says it does."),
				 errhint("Make a new plan with trek_plan().")));
	return text;
}

/*
 * Re-read, check and run step i of plan, from folder, noting how far it got
 * in progress.  A step outside a transaction is refused unless the caller
 * may leave its transaction (may_leave: trek_migrate() at the top level);
 * then it is only read and checked, and returned to be run (notxn.c).
 * Returns NULL for a step that ran.
 */
TrekPendingStep *
TrekStepRun(TrekPlan *plan, int i, TrekFolder *folder, TrekProgress *progress,
			bool may_leave)
{
	TrekPendingStep *pending = NULL;
	TrekStep   *s = &plan->steps[i];
	TrekStepInfo info;
	ErrorContextCallback cb;
	char	   *text;
	int			len;
	bool		no_transaction;

	progress->step = i;
	progress->line = 0;
	text = TrekStepRead(plan, i, folder, &info, &cb, &progress->line,
						may_leave, &len, &no_transaction);
	if (no_transaction)
	{
		info.top_level = true;
		pending = palloc(sizeof(TrekPendingStep));
		pending->stmts = TrekStepParse(&info, text, len);
		pending->info = info;
		pending->text = text;
		pending->len = len;
	}
	else
		run_in_transaction(s, &info, text, len);

	error_context_stack = cb.previous;
	return pending;
}
