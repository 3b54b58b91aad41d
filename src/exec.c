/*-------------------------------------------------------------------------
 *
 * exec.c
 *	  Running plans through SPI and keeping trek.history.
 *
 * Migrations run with the caller's rights, statement by statement, so a
 * failing statement can be named by file and line.  trek's own state in
 * schema trek is read and written with the rights of the schema's owner
 * (the role that created the extension), so callers need no privileges on
 * it and cannot rewrite it by hand.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "exec.h"
#include "folder.h"
#include "guard.h"
#include "parse.h"
#include "python.h"

/* first key of trek's advisory locks: "trek" in ASCII */
#define TREK_LOCK_CLASS 0x7472656b

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

/* statements on trek.history, prepared once per backend */
static SPIPlanPtr current_plan = NULL;
static SPIPlanPtr insert_plan = NULL;

/* set while a plan runs, to refuse trek_execute() from inside a migration */
static bool executing = false;

/*
 * Prepare a statement on trek's own state once per backend and keep it.
 */
static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

	if (p == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(p);
	return p;
}

static Oid
state_owner(void)
{
	Oid			nsp = get_namespace_oid("trek", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Latest revision of track in trek.history, read with the given snapshot
 * (NULL: the current one) as the owner of trek's state.  Needs SPI.
 */
static char *
history_current(const char *track, Snapshot snapshot, MemoryContext cxt)
{
	Oid			save_userid;
	int			save_sec;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;
	char	   *result;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(state_owner(),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);

	args[0] = CStringGetTextDatum(track);
	if (current_plan == NULL)
		current_plan = prepare_kept("SELECT to_revision FROM trek.history"
									" WHERE track OPERATOR(pg_catalog.=) $1"
									" ORDER BY id DESC LIMIT 1",
									1, argtypes);
	rc = SPI_execute_snapshot(current_plan, args, NULL, snapshot, InvalidSnapshot,
							  snapshot == InvalidSnapshot, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read trek.history: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		result = MemoryContextStrdup(cxt, "initial");
	else
	{
		char	   *rev = SPI_getvalue(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1);

		result = MemoryContextStrdup(cxt, rev);
	}
	SetUserIdAndSecContext(save_userid, save_sec);
	return result;
}

/*
 * The revision track is at: the newest history row's to_revision, or
 * "initial".
 */
char *
TrekHistoryCurrent(const char *track)
{
	MemoryContext callercxt = CurrentMemoryContext;
	char	   *result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	result = history_current(track, InvalidSnapshot, callercxt);
	SPI_finish();
	return result;
}

static Datum
timestamptz_array(const TimestampTz *values, int n)
{
	Datum	   *elems = palloc(n * sizeof(Datum));

	for (int i = 0; i < n; i++)
		elems[i] = TimestampTzGetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, TIMESTAMPTZOID,
										   sizeof(TimestampTz), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

static Datum
text_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * Record the applied steps of a plan in trek.history, one row per step in
 * step order, with one INSERT for the whole plan: starting an executor per
 * row costs more than a trivial migration does.  The rows commit or roll
 * back with the migrations, as the transaction is the same.  Needs SPI.
 */
static void
history_insert(TrekPlan *plan, TimestampTz *started, TimestampTz *finished,
			   const char *applied_by)
{
	Oid			save_userid;
	int			save_sec;
	Datum		args[9];
	Datum	   *from = palloc(plan->nsteps * sizeof(Datum));
	Datum	   *to = palloc(plan->nsteps * sizeof(Datum));
	Datum	   *file = palloc(plan->nsteps * sizeof(Datum));
	Datum	   *sha = palloc(plan->nsteps * sizeof(Datum));
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(state_owner(),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);

	if (insert_plan == NULL)
	{
		Oid			argtypes[9] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID,
			TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
		TIMESTAMPTZARRAYOID};

		insert_plan = prepare_kept("INSERT INTO trek.history (track, from_revision,"
												   " to_revision, direction, file, sha256, applied_at,"
												   " applied_by, duration)"
												   " SELECT $1, s.f, s.t, $2, s.file, s.sha, s.started, $3,"
												   " s.finished OPERATOR(pg_catalog.-) s.started"
												   " FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
												   " pg_catalog.unnest($6), pg_catalog.unnest($7),"
												   " pg_catalog.unnest($8), pg_catalog.unnest($9))"
												   " WITH ORDINALITY AS s(f, t, file, sha, started, finished, n)"
												   " ORDER BY s.n",
												   9, argtypes);
	}
	for (int i = 0; i < plan->nsteps; i++)
	{
		from[i] = CStringGetTextDatum(plan->steps[i].from);
		to[i] = CStringGetTextDatum(plan->steps[i].to);
		file[i] = CStringGetTextDatum(plan->steps[i].file);
		sha[i] = CStringGetTextDatum(plan->steps[i].sha256);
	}
	args[0] = CStringGetTextDatum(plan->track);
	args[1] = CStringGetTextDatum(plan->direction);
	args[2] = CStringGetTextDatum(applied_by);
	args[3] = text_array(from, plan->nsteps);
	args[4] = text_array(to, plan->nsteps);
	args[5] = text_array(file, plan->nsteps);
	args[6] = text_array(sha, plan->nsteps);
	args[7] = timestamptz_array(started, plan->nsteps);
	args[8] = timestamptz_array(finished, plan->nsteps);
	rc = SPI_execute_plan(insert_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) plan->nsteps)
		elog(ERROR, "could not insert into trek.history: %s",
			 SPI_result_code_string(rc));
	SetUserIdAndSecContext(save_userid, save_sec);
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
		{
			offset = char_offset(info->text, pos - 1);
			errposition(0);		/* it is not a position in the caller's query */
		}
	}
	if (geterrcode() == ERRCODE_OUT_OF_MEMORY)
		errhint("A plan runs in one transaction. If the lock table is full, raise max_locks_per_transaction or migrate in smaller plans by naming intermediate targets.");

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

	/* a UTF-8 byte order mark is not part of the SQL */
	if (GetDatabaseEncoding() == PG_UTF8 && len >= 3 &&
		memcmp(text, "\xEF\xBB\xBF", 3) == 0)
	{
		memset(text, ' ', 3);
	}

	info->text = text;
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

	meta = TrekFindMetaCommand(text, len);
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
run_step(TrekPlan *plan, int i, const char *dir, int dirfd)
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

	text = TrekReadFile(dir, dirfd, s->file, &len, sha256);
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

static void
lock_track(const char *track)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TREK_LOCK_CLASS,
						 hash_bytes((const unsigned char *) track, strlen(track)),
						 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
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
	char	   *dir;
	int			dirfd;
	char	   *current;
	char	   *applied_by;
	TimestampTz *started;
	TimestampTz *finished;

	/* on a hot standby, say so rather than "read-only transaction" */
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s during recovery", "trek_execute()"),
				 errhint("Connect to the primary server to apply migrations; standbys receive them through replication.")));
	PreventCommandIfReadOnly("trek_execute()");

	dir = TrekCheckFolder(plan->dir);
	for (int i = 0; i < plan->nsteps; i++)
	{
		if (plan->steps[i].python)
		{
			TrekPythonCheck(plan->steps[i].file, i + 1, plan->nsteps);
			break;
		}
	}

	applied_by = GetUserNameFromId(GetUserId(), false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * One plan per track at a time.  Once the lock is ours, read the track's
	 * revision with a fresh snapshot: under REPEATABLE READ or SERIALIZABLE
	 * the transaction's own snapshot may predate a plan that another session
	 * committed while we waited.
	 */
	lock_track(plan->track);
	current = history_current(plan->track, GetLatestSnapshot(), callercxt);

	if (strcmp(current, plan->to) == 0)
	{
		ereport(NOTICE,
				(errmsg("track \"%s\" is already at revision \"%s\", nothing to do",
						plan->track, current)));
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
	dirfd = TrekOpenFolder(dir);
	stepcxt = AllocSetContextCreate(CurrentMemoryContext, "trek step",
									ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < plan->nsteps; i++)
	{
		TrekStep   *s = &plan->steps[i];
		MemoryContext oldcxt = MemoryContextSwitchTo(stepcxt);

		CHECK_FOR_INTERRUPTS();
		started[i] = GetCurrentTimestamp();
		run_step(plan, i, dir, dirfd);
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
	TrekCloseFolder(dirfd);
	history_insert(plan, started, finished, applied_by);

	SPI_finish();
	return pstrdup(plan->to);
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
	char	   *volatile result = NULL;

	if (executing)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_execute() cannot be called from inside a migration"),
				 errhint("Run the other plan before or after this one, in the same transaction if need be.")));

	executing = true;
	PG_TRY();
	{
		result = execute_plan(plan);
	}
	PG_FINALLY();
	{
		executing = false;
	}
	PG_END_TRY();
	return result;
}
