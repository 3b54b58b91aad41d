/*-------------------------------------------------------------------------
 *
 * runrows.c
 *	  trek.runs: the rows of runs, and who may see them.
 *
 * Written and read with the rights of trek's state's owner (state.c).
 * trek_migrate() writes its row before its first step; trek_execute()
 * writes its row with its transaction, or runs.c writes it later from
 * shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "runrows.h"
#include "state.h"

/*
 * State of the newest run on track in trek.runs ("running", "done",
 * "failed", or "interrupted" for a running row whose backend is gone), in
 * cxt, and its id in *id; NULL if the track has no run, or trek's objects
 * have no runs table.
 */
char *
TrekStateLastRun(const char *track, int64 *id, MemoryContext cxt)
{
	static SPIPlanPtr run_plan = NULL;
	TrekOwnerSave save;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char	   *result = NULL;
	int			rc;

	*id = -1;
	if (!OidIsValid(get_relname_relid("runs", TrekStateNamespace())))
		return NULL;
	TrekStateOwnerEnter(&save);
	if (run_plan == NULL)
		run_plan = TrekStatePrepare("SELECT CASE WHEN r.state OPERATOR(pg_catalog.=) 'running'"
									" AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a"
									" WHERE a.pid OPERATOR(pg_catalog.=) r.pid"
									" AND a.backend_start OPERATOR(pg_catalog.=) r.backend_start)"
									" THEN 'interrupted' ELSE r.state END, r.id"
									" FROM trek.runs r WHERE r.track OPERATOR(pg_catalog.=) $1"
									" ORDER BY r.id DESC LIMIT 1",
									1, argtypes);
	args[0] = CStringGetTextDatum(track);
	rc = SPI_execute_plan(run_plan, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read trek.runs: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1);
		bool		isnull;

		result = v ? MemoryContextStrdup(cxt, v) : NULL;
		*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 2, &isnull));
	}
	TrekStateOwnerLeave(&save);
	return result;
}


/*
 * Does trek.runs have the column line (0.3 on)?
 */
static bool
runs_have_line(Oid nsp)
{
	Oid			relid = get_relname_relid("runs", nsp);

	return OidIsValid(relid) &&
		get_attnum(relid, "line") != InvalidAttrNumber;
}

/*
 * The bigint that the statement just run (result rc, expected) returned in
 * its one row; what names the statement in the error.
 */
static int64
single_int8(int rc, int expected, const char *what)
{
	bool		isnull;
	Datum		d;

	if (rc != expected || SPI_processed != 1)
		elog(ERROR, "could not %s: %s", what, SPI_result_code_string(rc));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "could not %s: no value", what);
	return DatumGetInt64(d);
}

/*
 * A new run id from trek.runs' sequence, taken at the start of a run and
 * kept even if the run's transaction rolls back, so that runs are numbered
 * in the order they started.  -1 for objects without trek.runs (0.1).
 */
int64
TrekStateRunNextId(void)
{
	static SPIPlanPtr id_plan = NULL;
	TrekOwnerSave save;
	Oid			nsp = TrekStateNamespace();
	int64		id;
	int			rc;

	if (TrekStateIs01(nsp))
		return -1;
	TrekStateOwnerEnter(&save);
	if (id_plan == NULL)
		id_plan = TrekStatePrepare("SELECT pg_catalog.nextval('trek.runs_id_seq'::pg_catalog.regclass)",
								   0, NULL);
	rc = SPI_execute_plan(id_plan, NULL, NULL, false, 1);
	id = single_int8(rc, SPI_OK_SELECT, "read trek.runs_id_seq");
	TrekStateOwnerLeave(&save);
	return id;
}

/* a message as trek.runs keeps it: at most TREK_RUN_MESSAGE_LEN - 1 bytes */
static Datum
message_datum(const char *message)
{
	int			len = strlen(message);

	if (len >= TREK_RUN_MESSAGE_LEN)
		len = pg_mbcliplen(message, len, TREK_RUN_MESSAGE_LEN - 1);
	return PointerGetDatum(cstring_to_text_with_len(message, len));
}

/*
 * Write run record r into trek.runs, unless a row with its id is there
 * already.  Does nothing with objects without trek.runs.
 */
void
TrekStateRunInsert(const TrekRunRecord *r)
{
	static SPIPlanPtr insert_run_plan = NULL;
	static SPIPlanPtr insert_run_0_2_plan = NULL;
	TrekOwnerSave save;
	Oid			nsp = TrekStateNamespace();
	bool		has_line;
	SPIPlanPtr	p;
	Datum		args[18];
	char		nulls[18];
	int			rc;

	if (TrekStateIs01(nsp))
		return;
	has_line = runs_have_line(nsp);
	(void) TrekStateOwnTable(nsp, "runs");
	TrekStateOwnerEnter(&save);
	p = has_line ? insert_run_plan : insert_run_0_2_plan;
	if (p == NULL)
	{
		Oid			argtypes[18] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			TEXTOID, INT4OID, INT4OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
			TIMESTAMPTZOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
		INT4OID};

#define INSERT_RUN_SQL(linecol, lineval) \
	"INSERT INTO trek.runs (id, track, dir, from_revision, target, call," \
	" state, steps_done, steps_planned, current_file, current_since," \
	" started_at, finished_at, run_by, pid, backend_start, sqlstate," \
	" message" linecol ")" \
	" VALUES ($1, $2, $3, $4, $5, 'execute', $6, $7, $8, $9, $10, $11, $12," \
	" $13, $14, $15, $16, $17" lineval ")" \
	" ON CONFLICT (id) DO NOTHING"
		if (has_line)
			p = insert_run_plan =
				TrekStatePrepare(INSERT_RUN_SQL(", line", ", $18"), 18, argtypes);
		else
			p = insert_run_0_2_plan =
				TrekStatePrepare(INSERT_RUN_SQL("", ""), 17, argtypes);
#undef INSERT_RUN_SQL
	}
	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(r->id);
	args[1] = CStringGetTextDatum(r->track);
	args[2] = CStringGetTextDatum(r->dir);
	args[3] = CStringGetTextDatum(r->from);
	args[4] = CStringGetTextDatum(r->target);
	/* 0.2's trek.runs knows no "interrupted" (nor line) */
	args[5] = CStringGetTextDatum(!has_line &&
								  strcmp(r->state, TREK_RUN_INTERRUPTED) == 0 ?
								  TREK_RUN_FAILED : r->state);
	args[6] = Int32GetDatum(r->steps_done);
	args[7] = Int32GetDatum(r->steps_planned);
	args[8] = CStringGetTextDatum(r->current_file);
	nulls[8] = r->current_file[0] ? ' ' : 'n';
	args[9] = TimestampTzGetDatum(r->current_since);
	nulls[9] = r->current_since ? ' ' : 'n';
	args[10] = TimestampTzGetDatum(r->started_at);
	args[11] = TimestampTzGetDatum(r->finished_at);
	nulls[11] = r->finished_at ? ' ' : 'n';
	args[12] = CStringGetTextDatum(r->run_by);
	args[13] = Int32GetDatum(r->pid);
	args[14] = TimestampTzGetDatum(r->backend_start);
	args[15] = CStringGetTextDatum(r->sqlstate);
	nulls[15] = r->sqlstate[0] ? ' ' : 'n';
	args[16] = message_datum(r->message);
	nulls[16] = r->message[0] ? ' ' : 'n';
	args[17] = Int32GetDatum(r->line);
	nulls[17] = r->line > 0 ? ' ' : 'n';
	rc = SPI_execute_plan(p, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not insert into trek.runs: %s",
			 SPI_result_code_string(rc));
	TrekStateOwnerLeave(&save);
}

/*
 * Start the record of a run of trek_migrate() in trek.runs and return its
 * id: on track, from revision from towards target, over nsteps steps read
 * from canonical folder dir, its row committed before its first step.
 * Objects of 0.1 have no trek.runs: then nothing is recorded, and the id
 * is -1.
 */
int64
TrekStateRunStart(TrekPlan *plan, const char *dir, int steps_done,
				  const char *current_file)
{
	static SPIPlanPtr run_plan = NULL;
	TrekOwnerSave save;
	Oid			nsp = TrekStateNamespace();
	Datum		args[9];
	char		nulls[9];
	int64		id;
	int			rc;

	if (TrekStateIs01(nsp))
		return -1;
	(void) TrekStateOwnTable(nsp, "runs");
	TrekStateOwnerEnter(&save);
	if (run_plan == NULL)
	{
		Oid			argtypes[9] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		INT4OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID};

		run_plan = TrekStatePrepare("INSERT INTO trek.runs (track, dir, from_revision,"
									" target, call, state, steps_done, steps_planned,"
									" current_file, current_since, started_at,"
									" run_by, pid, backend_start)"
									" VALUES ($1, $2, $3, $4, 'migrate', 'running', $5, $6, $7,"
									" pg_catalog.clock_timestamp(),"
									" pg_catalog.statement_timestamp(),"
									" $8, pg_catalog.pg_backend_pid(), $9)"
									" RETURNING id",
									9, argtypes);
	}
	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(plan->track);
	args[1] = CStringGetTextDatum(dir);
	args[2] = CStringGetTextDatum(plan->from);
	args[3] = CStringGetTextDatum(plan->to);
	args[4] = Int32GetDatum(steps_done);
	args[5] = Int32GetDatum(plan->nsteps);
	args[6] = CStringGetTextDatum(current_file);
	args[7] = CStringGetTextDatum(GetUserNameFromId(save.userid, false));
	args[8] = TimestampTzGetDatum(MyStartTimestamp);
	rc = SPI_execute_plan(run_plan, args, nulls, false, 1);
	id = single_int8(rc, SPI_OK_INSERT_RETURNING, "insert into trek.runs");
	TrekStateOwnerLeave(&save);
	return id;
}

/*
 * Update run id: steps_done steps are done and current_file (NULL: none)
 * runs now; state NULL keeps the state, else the run ends in it, with
 * sqlstate, message and the line of the error in current_file (0: not
 * known) for a failure.
 */
void
TrekStateRunUpdate(int64 id, int steps_done, const char *current_file,
				   const char *state, const char *sqlstate,
				   const char *message, int line)
{
	static SPIPlanPtr update_plan = NULL;
	static SPIPlanPtr update_0_2_plan = NULL;
	TrekOwnerSave save;
	Oid			nsp = TrekStateNamespace();
	bool		has_line;
	SPIPlanPtr	p;
	Datum		args[7];
	char		nulls[7];
	int			rc;

	if (id < 0)
		return;
	has_line = runs_have_line(nsp);
	(void) TrekStateOwnTable(nsp, "runs");
	TrekStateOwnerEnter(&save);
	p = has_line ? update_plan : update_0_2_plan;
	if (p == NULL)
	{
		Oid			argtypes[7] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, INT4OID};

#define UPDATE_RUN_SQL(lineset) \
	"UPDATE trek.runs SET steps_done = $2, current_file = $3," \
	" current_since = CASE WHEN $3 IS NOT NULL AND $4 IS NULL" \
	" THEN pg_catalog.clock_timestamp() ELSE current_since END," \
	" state = COALESCE($4, state)," \
	" finished_at = CASE WHEN $4 IS NOT NULL" \
	" THEN pg_catalog.clock_timestamp() END," \
	" sqlstate = $5, message = $6" lineset \
	" WHERE id OPERATOR(pg_catalog.=) $1"
		if (has_line)
			p = update_plan = TrekStatePrepare(UPDATE_RUN_SQL(", line = $7"),
											   7, argtypes);
		else
			p = update_0_2_plan = TrekStatePrepare(UPDATE_RUN_SQL(""), 6, argtypes);
#undef UPDATE_RUN_SQL
	}
	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(id);
	args[1] = Int32GetDatum(steps_done);
#define TEXT_OR_NULL(i, s) \
	do { \
		args[i] = (s) ? CStringGetTextDatum(s) : (Datum) 0; \
		nulls[i] = (s) ? ' ' : 'n'; \
	} while (0)
	TEXT_OR_NULL(2, current_file);
	TEXT_OR_NULL(3, state);
	TEXT_OR_NULL(4, sqlstate);
#undef TEXT_OR_NULL
	args[5] = message ? message_datum(message) : (Datum) 0;
	nulls[5] = message ? ' ' : 'n';
	args[6] = Int32GetDatum(line);
	nulls[6] = line > 0 ? ' ' : 'n';
	rc = SPI_execute_plan(p, args, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not update trek.runs: %s",
			 SPI_result_code_string(rc));
	TrekStateOwnerLeave(&save);
}


/*
 * The rows of trek.runs (of track, or of all tracks if track is NULL) that
 * role userid may see, newest first, in the columns of trek_runs() and
 * then the track's owner (NULL: none yet); in SPI_tuptable.  A role sees
 * the runs of tracks whose owner's privileges it has (superusers: all),
 * and on a track without an owner the runs it ran itself.
 */
void
TrekStateRuns(const char *track, Oid userid)
{
	TrekOwnerSave save;
	Oid			nsp = TrekStateNamespace();
	bool		has_line = runs_have_line(nsp);
	Oid			argtypes[4] = {TEXTOID, OIDOID, TEXTOID, BOOLOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *sql;
	int			rc;

	if (!OidIsValid(get_relname_relid("runs", nsp)))
	{
		SPI_tuptable = NULL;
		SPI_processed = 0;
		return;
	}
	TrekStateOwnerEnter(&save);
	sql = psprintf("SELECT r.id, r.track, r.dir, r.from_revision, r.target, r.call,"
				   " CASE WHEN r.state OPERATOR(pg_catalog.=) 'running'"
				   " AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a"
				   " WHERE a.pid OPERATOR(pg_catalog.=) r.pid"
				   " AND a.backend_start OPERATOR(pg_catalog.=) r.backend_start)"
				   " THEN 'interrupted' ELSE r.state END,"
				   " r.steps_done, r.steps_planned, r.current_file, %s,"
				   " r.current_since, r.started_at, r.finished_at, r.run_by, r.pid,"
				   " r.sqlstate, r.message"
				   " FROM trek.runs r LEFT JOIN trek.tracks t"
				   " ON t.track OPERATOR(pg_catalog.=) r.track"
				   " WHERE ($1 IS NULL OR r.track OPERATOR(pg_catalog.=) $1)"
				   " AND CASE WHEN t.owner IS NULL"
				   " THEN r.run_by OPERATOR(pg_catalog.=) $3 OR $4"
				   " ELSE pg_catalog.pg_has_role($2, t.owner::pg_catalog.oid, 'USAGE') END"
				   " ORDER BY r.id DESC",
				   has_line ? "r.line" : "NULL::pg_catalog.int4");
	args[0] = track ? CStringGetTextDatum(track) : (Datum) 0;
	nulls[0] = track ? ' ' : 'n';
	args[1] = ObjectIdGetDatum(userid);
	args[2] = CStringGetTextDatum(GetUserNameFromId(userid, false));
	args[3] = BoolGetDatum(superuser_arg(userid));
	rc = SPI_execute_with_args(sql, 4, argtypes, args, nulls, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read trek.runs: %s", SPI_result_code_string(rc));
	TrekStateOwnerLeave(&save);
}
