/*-------------------------------------------------------------------------
 *
 * history.c
 *	  trek.history: the rows of applied steps and stamps, and a track's owner.
 *
 * Written and read with the rights of trek's state's owner (state.c), as
 * every statement on trek's own tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "guard.h"
#include "history.h"
#include "state.h"

static SPIPlanPtr track_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr insert_0_1_plan = NULL;
static SPIPlanPtr insert_accepted_plan = NULL;

/*
 * The history INSERT: $1 track, $2 direction, $3 applied_by, $4 folder
 * (not stored by 0.1), $5 to $10 the steps as arrays; from 0.3 on, $11 the
 * hazards each step accepted, comma-separated ('' for none).
 */
#define INSERT_SQL(dircol, dirval, acccol, accval, accarg) \
	"INSERT INTO trek.history (track, from_revision, to_revision, direction," \
	" file, sha256, applied_at, applied_by, duration" dircol acccol ")" \
	" SELECT $1, s.f, s.t, $2, s.file, s.sha, s.started, $3," \
	" s.finished OPERATOR(pg_catalog.-) s.started" dirval accval \
	" FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6)," \
	" pg_catalog.unnest($7), pg_catalog.unnest($8)," \
	" pg_catalog.unnest($9), pg_catalog.unnest($10)" accarg ")" \
	" WITH ORDINALITY AS s(f, t, file, sha, started, finished" acccol \
	", n) ORDER BY s.n"
#define INSERT_ACCEPTED_VAL \
	", pg_catalog.string_to_array(NULLIF(s.accepted, ''), ',')"


/*
 * Make userid the owner of track, which has none yet.  Runs with the
 * owner's rights (inside TrekStateOwnerEnter()).
 */
static void
claim_track(const char *track, Oid userid)
{
	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		args[2];
	int			rc;

	if (track_plan == NULL)
		track_plan = TrekStatePrepare("INSERT INTO trek.tracks (track, owner)"
									  " VALUES ($1, $2::pg_catalog.regrole)",
									  2, argtypes);
	args[0] = CStringGetTextDatum(track);
	args[1] = ObjectIdGetDatum(userid);
	rc = SPI_execute_plan(track_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not insert into trek.tracks: %s",
			 SPI_result_code_string(rc));
}

/*
 * Record that track, at revision from, is now at revision to without any
 * migration having run: a history row with direction "stamp", read from
 * canonical folder dir.  A stamp by trek_stamp() has neither file nor
 * SHA-256 (NULL); one by trek_adopt() has the up file another tool applied,
 * its SHA-256 and the tool, and counts as an applied step.  A track without
 * an owner (!owned) gets the current user as its owner, as for applied
 * steps.  The caller holds the track lock and has checked the owner.
 */
void
TrekStateStampFile(const char *track, const char *dir, const char *from,
				   const char *to, const char *file, const char *sha256,
				   const char *tool, bool owned)
{
	static SPIPlanPtr stamp_plan = NULL;
	TrekOwnerSave save;
	Oid			nsp = TrekStateNamespace();
	Oid			userid = GetUserId();
	Datum		args[8];
	char		nulls[8];
	int			rc;

	memset(nulls, ' ', sizeof(nulls));
	if (TrekStateIs01(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trek's objects in this database are those of version 0.1"),
				 errhint("Run ALTER EXTENSION trek UPDATE.")));
	(void) TrekStateOwnTable(nsp, "history");
	(void) TrekStateOwnTable(nsp, "tracks");
	TrekStateOwnerEnter(&save);
	if (!owned)
		claim_track(track, userid);
	if (stamp_plan == NULL)
	{
		Oid			argtypes[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID};

		stamp_plan = TrekStatePrepare("INSERT INTO trek.history (track, from_revision,"
									  " to_revision, direction, file, sha256,"
									  " applied_at, applied_by, duration, dir, tool)"
									  " VALUES ($1, $2, $3, 'stamp', $6, $7,"
									  " pg_catalog.clock_timestamp(), $4,"
									  " '0'::pg_catalog.interval, $5, $8)",
									  8, argtypes);
	}
	args[0] = CStringGetTextDatum(track);
	args[1] = CStringGetTextDatum(from);
	args[2] = CStringGetTextDatum(to);
	args[3] = CStringGetTextDatum(GetUserNameFromId(userid, false));
	args[4] = CStringGetTextDatum(dir);
	args[5] = file ? CStringGetTextDatum(file) : (Datum) 0;
	args[6] = sha256 ? CStringGetTextDatum(sha256) : (Datum) 0;
	args[7] = tool ? CStringGetTextDatum(tool) : (Datum) 0;
	nulls[5] = file ? ' ' : 'n';
	nulls[6] = sha256 ? ' ' : 'n';
	nulls[7] = tool ? ' ' : 'n';
	rc = SPI_execute_plan(stamp_plan, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != 1)
		elog(ERROR, "could not insert into trek.history: %s",
			 SPI_result_code_string(rc));
	TrekStateOwnerLeave(&save);
}

void
TrekStateStamp(const char *track, const char *dir, const char *from,
			   const char *to, bool owned)
{
	TrekStateStampFile(track, dir, from, to, NULL, NULL, NULL, owned);
}

/*
 * The history of track, oldest first, copied into cxt: *nrows rows.  Files
 * and SHA-256 are NULL in stamp rows.
 */
TrekHistoryRow *
TrekStateHistory(const char *track, int *nrows, MemoryContext cxt)
{
	static SPIPlanPtr history_plan = NULL;
	TrekOwnerSave save;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	TrekHistoryRow *rows;
	int			rc;

	TrekStateOwnerEnter(&save);
	if (history_plan == NULL)
		history_plan = TrekStatePrepare("SELECT id, from_revision, to_revision,"
										" direction, file, sha256 FROM trek.history"
										" WHERE track OPERATOR(pg_catalog.=) $1"
										" ORDER BY id",
										1, argtypes);
	args[0] = CStringGetTextDatum(track);
	rc = SPI_execute_plan(history_plan, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read trek.history: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed > (uint64) (MaxAllocSize / sizeof(TrekHistoryRow)))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("track \"%s\" has too many history rows", track)));
	rows = MemoryContextAlloc(cxt, Max(SPI_processed, 1) * sizeof(TrekHistoryRow));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TrekHistoryRow *r = &rows[i];
		bool		isnull;
		char	   *v;

		CHECK_FOR_INTERRUPTS();
		r->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		r->from = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 2));
		r->to = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 3));
		v = SPI_getvalue(tup, desc, 4);
		r->direction = strcmp(v, "up") == 0 ? TREK_UP :
			strcmp(v, "down") == 0 ? TREK_DOWN : TREK_STAMP;
		v = SPI_getvalue(tup, desc, 5);
		r->file = v ? MemoryContextStrdup(cxt, v) : NULL;
		v = SPI_getvalue(tup, desc, 6);
		r->sha256 = v ? MemoryContextStrdup(cxt, v) : NULL;
	}
	*nrows = (int) SPI_processed;
	TrekStateOwnerLeave(&save);
	return rows;
}

/*
 * Is r a run of a repeatable migration (or trek_adopt()'s record of one)?
 * It leaves the revision as it is.
 */
static bool
is_repeatable_run(const TrekHistoryRow *r)
{
	return r->direction != TREK_DOWN && r->file != NULL &&
		strcmp(r->from, r->to) == 0;
}

/*
 * The history rows in effect, oldest first: the up steps that brought the
 * track where it is and were not undone since, *n of them (copied).  The
 * history is replayed oldest first as a stack: an up step is pushed; a down
 * step to revision R pops steps until the top one ends at R (all of them
 * for "initial"); a stamp to a revision the stack passes through pops like
 * a down step, and a stamp anywhere else keeps the stack.  So a file that
 * was applied, undone and edited before being applied again is judged
 * against its newest run (drift.c), and "-N" goes back the way the track
 * came (plan.c).
 */
static TrekHistoryRow *
rows_in_effect(TrekHistoryRow *rows, int nrows, int *n)
{
	int		   *stack = palloc(Max(nrows, 1) * sizeof(int));
	TrekHistoryRow *effect;
	int			top = 0;

	for (int i = 0; i < nrows; i++)
	{
		TrekHistoryRow *r = &rows[i];
		int			k;

		CHECK_FOR_INTERRUPTS();
		if (is_repeatable_run(r))
			continue;
		/* trek_adopt()'s stamps are the steps another tool applied */
		if (r->direction == TREK_UP ||
			(r->direction == TREK_STAMP && r->file != NULL))
		{
			stack[top++] = i;
			continue;
		}
		if (r->direction == TREK_STAMP && strcmp(r->to, "initial") != 0)
		{
			/* a stamp forward or sideways keeps what is applied */
			for (k = top; k > 0; k--)
				if (strcmp(rows[stack[k - 1]].to, r->to) == 0)
					break;
			if (k == 0)
				continue;
		}
		while (top > 0 && strcmp(rows[stack[top - 1]].to, r->to) != 0)
			top--;
	}
	effect = palloc(Max(top, 1) * sizeof(TrekHistoryRow));
	for (int i = 0; i < top; i++)
		effect[i] = rows[stack[i]];
	pfree(stack);
	*n = top;
	return effect;
}

/*
 * What a call on track needs of its past (TrekTrail), in the caller's
 * context.  For planning, target is where it goes: its steps in effect are
 * read when trek.check_applied is on or target goes back ("-N"), else only
 * the revision; NULL (trek_status, trek_verify) reads them always.  The
 * revision comes from the same read of trek.history as the steps.
 * Connects to SPI itself.
 */
TrekTrail *
TrekStateTrail(const char *track, const char *target)
{
	MemoryContext callercxt = CurrentMemoryContext;
	TrekTrail  *trail = palloc0(sizeof(TrekTrail));
	TrekHistoryRow *rows;
	int			nrows;
	bool		owned;

	trail->check = target != NULL && TrekCheckApplied;
	if (target != NULL && !TrekCheckApplied && target[0] != '-')
	{
		trail->current = TrekStateCurrent(track);
		return trail;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	(void) TrekStateRead(track, &owned, &trail->owner, callercxt);
	trail->visible = TrekGuardMaySeeTrack(owned, trail->owner);
	rows = TrekStateHistory(track, &nrows, callercxt);
	SPI_finish();
	trail->current = nrows > 0 ? rows[nrows - 1].to : pstrdup("initial");
	trail->rows = rows_in_effect(rows, nrows, &trail->n);
	return trail;
}

/*
 * The newest run on track of each repeatable migration (an up row that
 * leaves the revision as it is) still in effect: not followed by a down
 * step from its revision, which undid what it ran on.  *n rows, in the
 * caller's context.  Connects to SPI itself.
 */
TrekHistoryRow *
TrekStateRepeatables(const char *track, int *n)
{
	MemoryContext callercxt = CurrentMemoryContext;
	TrekHistoryRow *rows;
	int			nrows;
	TrekHistoryRow *out;
	const char **left;			/* revisions a later down step left */
	int			nleft = 0;
	int			k = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rows = TrekStateHistory(track, &nrows, callercxt);
	SPI_finish();
	out = palloc(Max(nrows, 1) * sizeof(TrekHistoryRow));
	left = palloc(Max(nrows, 1) * sizeof(char *));
	for (int i = nrows - 1; i >= 0; i--)
	{
		bool		skip = false;

		CHECK_FOR_INTERRUPTS();
		if (rows[i].direction == TREK_DOWN)
		{
			left[nleft++] = rows[i].from;
			continue;
		}
		if (!is_repeatable_run(&rows[i]))
			continue;
		for (int j = 0; j < nleft && !skip; j++)
			skip = strcmp(left[j], rows[i].to) == 0;
		for (int j = 0; j < k && !skip; j++)
			skip = strcmp(out[j].file, rows[i].file) == 0;
		if (!skip)
			out[k++] = rows[i];
	}
	*n = k;
	return out;
}

/*
 * Is repeatable migration file, whose SHA-256 is now sha256, new or changed
 * since its run among last (TrekStateRepeatables(), nlast rows)?
 */
bool
TrekRepeatableChanged(const TrekHistoryRow *last, int nlast, const char *file,
					  const char *sha256)
{
	for (int j = 0; j < nlast; j++)
		if (strcmp(last[j].file, file) == 0)
			return strcmp(last[j].sha256, sha256) != 0;
	return true;
}

static Datum
text_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
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

/*
 * Record steps first .. first + n - 1 of plan, applied from canonical
 * folder dir between started[i] and finished[i], in trek.history: one row
 * per step in step order, with one INSERT, since starting an executor per
 * row costs more than a trivial migration does.  A track without an owner
 * (!owned) gets the current user as its owner first.  The rows commit or
 * roll back with the migrations.
 */
void
TrekStateRecord(TrekPlan *plan, const char *direction, const char *dir,
				int first, int n, TimestampTz *started, TimestampTz *finished,
				bool owned)
{
	TrekOwnerSave save;
	Oid			nsp = TrekStateNamespace();
	Oid			userid = GetUserId();
	Datum		args[11];
	Datum	   *from = palloc(n * sizeof(Datum));
	Datum	   *accepted = palloc(n * sizeof(Datum));
	bool		with_accepted;
	Datum	   *to = palloc(n * sizeof(Datum));
	Datum	   *file = palloc(n * sizeof(Datum));
	Datum	   *sha = palloc(n * sizeof(Datum));
	bool		legacy = TrekStateIs01(nsp);
	SPIPlanPtr	insert;
	int			rc;

	/* a step of the plan itself may have added a trigger */
	(void) TrekStateOwnTable(nsp, "history");
	if (!legacy)
		(void) TrekStateOwnTable(nsp, "tracks");
	TrekStateOwnerEnter(&save);

	if (!owned && !legacy)
		claim_track(plan->track, userid);

	/* the hazards steps accepted, where trek.history has their column */
	with_accepted = !legacy &&
		get_attnum(get_relname_relid("history", nsp), "accepted") !=
		InvalidAttrNumber;
	insert = legacy ? insert_0_1_plan :
		with_accepted ? insert_accepted_plan : insert_plan;
	if (insert == NULL)
	{
		Oid			argtypes[11] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};

		if (legacy)
			insert = insert_0_1_plan =
				TrekStatePrepare(INSERT_SQL("", "", "", "", ""), 10, argtypes);
		else if (with_accepted)
			insert = insert_accepted_plan =
				TrekStatePrepare(INSERT_SQL(", dir", ", $4", ", accepted",
											INSERT_ACCEPTED_VAL,
											", pg_catalog.unnest($11)"),
								 11, argtypes);
		else
			insert = insert_plan =
				TrekStatePrepare(INSERT_SQL(", dir", ", $4", "", "", ""), 10,
								 argtypes);
	}
	for (int i = 0; i < n; i++)
	{
		TrekStep   *s = &plan->steps[first + i];

		from[i] = CStringGetTextDatum(s->from);
		to[i] = CStringGetTextDatum(s->to);
		file[i] = CStringGetTextDatum(s->file);
		sha[i] = CStringGetTextDatum(s->sha256);
		accepted[i] = CStringGetTextDatum(s->accepted ? s->accepted : "");
	}
	args[0] = CStringGetTextDatum(plan->track);
	args[1] = CStringGetTextDatum(direction);
	args[2] = CStringGetTextDatum(GetUserNameFromId(userid, false));
	args[3] = CStringGetTextDatum(dir);
	args[4] = text_array(from, n);
	args[5] = text_array(to, n);
	args[6] = text_array(file, n);
	args[7] = text_array(sha, n);
	args[8] = timestamptz_array(started, n);
	args[9] = timestamptz_array(finished, n);
	args[10] = text_array(accepted, n);
	rc = SPI_execute_plan(insert, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) n)
		elog(ERROR, "could not insert into trek.history: %s",
			 SPI_result_code_string(rc));
	TrekStateOwnerLeave(&save);
}
