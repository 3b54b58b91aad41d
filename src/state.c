/*-------------------------------------------------------------------------
 *
 * state.c
 *	  trek's own state: the track lock, where a track is, who owns it, and
 *	  the history of applied steps.
 *
 * The state lives in schema trek (tables trek.history and trek.tracks) and
 * is read and written with the rights of the schema's owner, the role that
 * created the extension, so callers need no privileges on it and cannot
 * rewrite it by hand.  Whatever privileges on trek's objects were granted
 * to others, none of their code may run with those rights: the owner's
 * rights are taken in a security-restricted context with search_path
 * pinned to pg_catalog, every name in the statements is qualified, and the
 * tables are refused while they carry triggers, rules or row security that
 * the extension did not create.
 *
 * All functions here but TrekStateCurrent() need an SPI connection.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "state.h"

/*
 * The track lock is two locks with one tag, taken in this order and held
 * together by every run, stamp and trek_execute() on the track:
 *
 * - an advisory lock of a kind that no SQL function takes: pg_advisory_lock()
 *   and friends always set the fourth key field to 1 (one bigint key) or 2
 *   (two int keys), so no role can take, share or block it from SQL.  As a
 *   session lock it outlives the abort of a transaction, but
 *   pg_advisory_unlock_all() and DISCARD ALL release every session-level
 *   advisory lock, this one too;
 * - the same tag in the default lock method, which no SQL function can
 *   release, but whose session form the abort of a top-level transaction
 *   releases (a failed statement of a step outside a transaction).
 *
 * A waiter needs both, in this order, so the track stays locked as long as
 * its holder keeps either.  trek_migrate() takes the second one back after
 * such an abort (nobody else can hold it while the first is ours), and
 * refuses a step that released the first (TrekStateLockHeld).
 *
 * The tag: the database, 64 bits of the SHA-256 of the track's name, and
 * the kind.  Finding another name whose lock is the same takes about 2^64
 * SHA-256 computations.
 */
#define TREK_LOCK_KIND	0x7472		/* "tr": not 1 or 2 */

/* statements on trek's state, prepared once per backend */
static SPIPlanPtr current_plan = NULL;
static SPIPlanPtr state_plan = NULL;
static SPIPlanPtr track_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr insert_0_1_plan = NULL;

#define CURRENT_SQL \
	"SELECT to_revision FROM trek.history" \
	" WHERE track OPERATOR(pg_catalog.=) $1 ORDER BY id DESC LIMIT 1"

/*
 * The history INSERT: $1 track, $2 direction, $3 applied_by, $4 folder
 * (not stored by 0.1), $5 to $10 the steps as arrays.
 */
#define INSERT_SQL(dircol, dirval) \
	"INSERT INTO trek.history (track, from_revision, to_revision, direction," \
	" file, sha256, applied_at, applied_by, duration" dircol ")" \
	" SELECT $1, s.f, s.t, $2, s.file, s.sha, s.started, $3," \
	" s.finished OPERATOR(pg_catalog.-) s.started" dirval \
	" FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6)," \
	" pg_catalog.unnest($7), pg_catalog.unnest($8)," \
	" pg_catalog.unnest($9), pg_catalog.unnest($10))" \
	" WITH ORDINALITY AS s(f, t, file, sha, started, finished, n)" \
	" ORDER BY s.n"

/* what owner_enter() changed, for owner_leave() */
typedef struct TrekOwnerSave
{
	Oid			userid;
	int			sec;
	int			nestlevel;
} TrekOwnerSave;

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
state_namespace(void)
{
	return get_namespace_oid("trek", false);
}

static Oid
state_owner(Oid nsp)
{
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Take the owner's rights for trek's own statements: a security-restricted
 * operation (as for index expressions and maintenance commands), with
 * search_path pinned so that no other role's function or operator is found.
 * Undone by owner_leave(), or by the abort of the (sub)transaction.
 */
static void
owner_enter(TrekOwnerSave *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec);
	SetUserIdAndSecContext(state_owner(state_namespace()),
						   save->sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

static void
owner_leave(TrekOwnerSave *save)
{
	AtEOXact_GUC(true, save->nestlevel);
	SetUserIdAndSecContext(save->userid, save->sec);
}

/*
 * Refuse to write table name of schema nsp while it has triggers, rules or
 * row security that trek did not create: they would run, or be judged,
 * with the owner's rights.  (The extension creates none; the internal
 * triggers of a foreign key that references the table fire only on UPDATE
 * and DELETE, which trek never runs.)
 */
static Oid
own_table(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);
	Relation	rel;
	const char *what = NULL;
	const char *which = NULL;

	if (!OidIsValid(relid))
		elog(ERROR, "table \"trek.%s\" is missing", name);

	rel = table_open(relid, AccessShareLock);
	if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers && what == NULL; i++)
		{
			if (!rel->trigdesc->triggers[i].tgisinternal)
			{
				what = "trigger";
				which = pstrdup(rel->trigdesc->triggers[i].tgname);
			}
		}
	}
	if (what == NULL && rel->rd_rules != NULL)
		what = "rule";
	if (what == NULL && rel->rd_rel->relrowsecurity)
		what = "row security";
	table_close(rel, AccessShareLock);

	if (what != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 which != NULL ?
				 errmsg("table \"trek.%s\" has %s \"%s\", which trek did not create",
						name, what, which) :
				 errmsg("table \"trek.%s\" has a %s, which trek did not create",
						name, what),
				 errdetail("trek writes its state with the rights of the extension's owner, and would run it with them."),
				 errhint("Remove it; trek's tables are trek's alone.")));
	return relid;
}

/*
 * Are trek's objects in this database those of version 0.1, which has no
 * track owners and no folder column in trek.history?  A 0.1 database keeps
 * working with this library until ALTER EXTENSION trek UPDATE, with 0.1's
 * rules.
 */
static bool
objects_are_0_1(Oid nsp)
{
	return !OidIsValid(get_relname_relid("tracks", nsp));
}

/*
 * The tags of track's lock (SHA-256 needs a transaction: OpenSSL's
 * contexts belong to a resource owner).
 */
void
TrekStateLockTags(const char *track, TrekTrackLock *lock)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	uint32		high;
	uint32		low;

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) track, strlen(track)) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute the SHA-256 of track \"%s\"", track);
	pg_cryptohash_free(ctx);
	memcpy(&high, digest, sizeof(high));
	memcpy(&low, digest + sizeof(high), sizeof(low));
	SET_LOCKTAG_ADVISORY(lock->advisory, MyDatabaseId, high, low,
						 TREK_LOCK_KIND);
	lock->held = lock->advisory;
	lock->held.locktag_lockmethodid = DEFAULT_LOCKMETHOD;
}

/*
 * Take the track lock (both parts, see above).  A session lock (session =
 * true) lasts until TrekStateUnlock(); otherwise until the end of the
 * transaction.
 */
void
TrekStateLock(const char *track, TrekTrackLock *lock, bool session)
{
	TrekStateLockTags(track, lock);
	(void) LockAcquire(&lock->advisory, ExclusiveLock, session, false);
	(void) LockAcquire(&lock->held, ExclusiveLock, session, false);
}

/* does this backend hold the session lock with this tag? */
static bool
holds_session_lock(LOCKTAG *tag)
{
	/* taking it once more succeeds at once when it is ours: undo that */
	switch (LockAcquire(tag, ExclusiveLock, true, true))
	{
		case LOCKACQUIRE_ALREADY_HELD:
		case LOCKACQUIRE_ALREADY_CLEAR:
			(void) LockRelease(tag, ExclusiveLock, true);
			return true;
		case LOCKACQUIRE_OK:
			(void) LockRelease(tag, ExclusiveLock, true);
			return false;
		case LOCKACQUIRE_NOT_AVAIL:
			break;
	}
	return false;
}

/*
 * Is the session track lock of a trek_migrate() run still whole?  The part
 * in the default lock method is taken back if the abort of a top-level
 * transaction released it (nobody else can have it while the advisory part
 * is ours).  Returns false if the advisory part is gone: a statement of the
 * run released it (pg_advisory_unlock_all(), DISCARD ALL), and another
 * session may be waiting with it for the rest.  Needs no transaction.
 */
bool
TrekStateLockHeld(TrekTrackLock *lock)
{
	if (!holds_session_lock(&lock->advisory))
		return false;
	if (!holds_session_lock(&lock->held))
		(void) LockAcquire(&lock->held, ExclusiveLock, true, false);
	return true;
}

/*
 * A statement of migration file released the advisory part of trek's lock
 * on track (TrekStateLockHeld() said so): refuse the step, since another
 * session may now be waiting with it for the rest of the lock.
 */
void
TrekStateLockReleased(const char *file, const char *track)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("migration \"%s\" released trek's lock on track \"%s\"",
					file, track),
			 errdetail("pg_advisory_unlock_all() and DISCARD ALL release every advisory lock of the session, also the one trek_migrate() holds on the track for the whole run."),
			 errhint("Release only the advisory locks the migration took itself, with pg_advisory_unlock().")));
}

/*
 * Let go of the session track lock, of the parts still held.
 */
void
TrekStateUnlock(TrekTrackLock *lock)
{
	if (holds_session_lock(&lock->held))
		(void) LockRelease(&lock->held, ExclusiveLock, true);
	if (holds_session_lock(&lock->advisory))
		(void) LockRelease(&lock->advisory, ExclusiveLock, true);
}

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

/*
 * The revision track is at: the newest history row's to_revision, or
 * "initial".  Works on trek's objects of every version.
 */
char *
TrekStateCurrent(const char *track)
{
	MemoryContext callercxt = CurrentMemoryContext;
	TrekOwnerSave save;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;
	char	   *result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	owner_enter(&save);
	if (current_plan == NULL)
		current_plan = prepare_kept(CURRENT_SQL, 1, argtypes);
	args[0] = CStringGetTextDatum(track);
	rc = SPI_execute_plan(current_plan, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read trek.history: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		result = MemoryContextStrdup(callercxt, "initial");
	else
		result = MemoryContextStrdup(callercxt,
									 SPI_getvalue(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1));
	owner_leave(&save);
	SPI_finish();
	return result;
}

/*
 * Where track is and who owns it, read with the latest snapshot: once the
 * track lock is ours, a transaction under REPEATABLE READ or SERIALIZABLE
 * may still have a snapshot older than a run that another session
 * committed while we waited.  Returns the revision in cxt; *owned says
 * whether the track has an owner yet (a step was applied or stamped), and
 * *owner who it is.
 */
char *
TrekStateRead(const char *track, bool *owned, Oid *owner, MemoryContext cxt)
{
	TrekOwnerSave save;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	int			rc;
	char	   *result;
	Oid			nsp = state_namespace();
	bool		legacy = objects_are_0_1(nsp);

	/* refuse early, before any step runs; TrekStateRecord checks again */
	(void) own_table(nsp, "history");
	if (!legacy)
		(void) own_table(nsp, "tracks");
	owner_enter(&save);
	if (legacy && current_plan == NULL)
		current_plan = prepare_kept(CURRENT_SQL, 1, argtypes);
	if (!legacy && state_plan == NULL)
		state_plan = prepare_kept("SELECT (SELECT h.to_revision FROM trek.history h"
								  " WHERE h.track OPERATOR(pg_catalog.=) $1"
								  " ORDER BY h.id DESC LIMIT 1),"
								  " (SELECT t.owner FROM trek.tracks t"
								  " WHERE t.track OPERATOR(pg_catalog.=) $1)",
								  1, argtypes);
	args[0] = CStringGetTextDatum(track);
	rc = SPI_execute_snapshot(legacy ? current_plan : state_plan, args, NULL,
							  GetLatestSnapshot(), InvalidSnapshot, true,
							  false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read trek's state: %s",
			 SPI_result_code_string(rc));
	isnull = true;
	if (SPI_processed == 1)
		(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							 &isnull);
	result = MemoryContextStrdup(cxt, isnull ? "initial" :
								 SPI_getvalue(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1));
	*owner = InvalidOid;
	*owned = false;
	if (!legacy)
	{
		*owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 2,
												&isnull));
		*owned = !isnull;
	}
	owner_leave(&save);
	return result;
}

/*
 * Refuse to move a track owned by a role whose privileges the current user
 * does not have (superusers have every role's).  what names the action.
 */
void
TrekStateCheckOwner(const char *track, bool owned, Oid owner,
					const char *what)
{
	char	   *name;

	if (!owned || has_privs_of_role(GetUserId(), owner))
		return;
	name = GetUserNameFromId(owner, true);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s track \"%s\"", what, track),
			 name != NULL ?
			 errdetail("Track \"%s\" belongs to role \"%s\".", track, name) :
			 errdetail("Track \"%s\" belongs to a role that no longer exists (OID %u).",
					   track, owner),
			 errhint("Only roles with the privileges of the track's owner, and superusers, may execute, migrate or stamp on it.")));
}

/* ---- operations: stamps, the history of a track, its last run ---- */

/*
 * Make userid the owner of track, which has none yet.  Runs with the
 * owner's rights (inside owner_enter()).
 */
static void
claim_track(const char *track, Oid userid)
{
	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		args[2];
	int			rc;

	if (track_plan == NULL)
		track_plan = prepare_kept("INSERT INTO trek.tracks (track, owner)"
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
 * migration having run: a history row with direction "stamp" and neither
 * file nor SHA-256, read from canonical folder dir.  A track without an
 * owner (!owned) gets the current user as its owner, as for applied steps.
 * The caller holds the track lock and has checked the owner.
 */
void
TrekStateStamp(const char *track, const char *dir, const char *from,
			   const char *to, bool owned)
{
	static SPIPlanPtr stamp_plan = NULL;
	TrekOwnerSave save;
	Oid			nsp = state_namespace();
	Oid			userid = GetUserId();
	Datum		args[5];
	int			rc;

	if (objects_are_0_1(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trek's objects in this database are those of version 0.1"),
				 errhint("Run ALTER EXTENSION trek UPDATE.")));
	(void) own_table(nsp, "history");
	(void) own_table(nsp, "tracks");
	owner_enter(&save);
	if (!owned)
		claim_track(track, userid);
	if (stamp_plan == NULL)
	{
		Oid			argtypes[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};

		stamp_plan = prepare_kept("INSERT INTO trek.history (track, from_revision,"
								  " to_revision, direction, file, sha256,"
								  " applied_at, applied_by, duration, dir)"
								  " VALUES ($1, $2, $3, 'stamp', NULL, NULL,"
								  " pg_catalog.clock_timestamp(), $4,"
								  " '0'::pg_catalog.interval, $5)",
								  5, argtypes);
	}
	args[0] = CStringGetTextDatum(track);
	args[1] = CStringGetTextDatum(from);
	args[2] = CStringGetTextDatum(to);
	args[3] = CStringGetTextDatum(GetUserNameFromId(userid, false));
	args[4] = CStringGetTextDatum(dir);
	rc = SPI_execute_plan(stamp_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != 1)
		elog(ERROR, "could not insert into trek.history: %s",
			 SPI_result_code_string(rc));
	owner_leave(&save);
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

	owner_enter(&save);
	if (history_plan == NULL)
		history_plan = prepare_kept("SELECT id, from_revision, to_revision,"
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
	owner_leave(&save);
	return rows;
}

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
	if (!OidIsValid(get_relname_relid("runs", state_namespace())))
		return NULL;
	owner_enter(&save);
	if (run_plan == NULL)
		run_plan = prepare_kept("SELECT CASE WHEN r.state OPERATOR(pg_catalog.=) 'running'"
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
	owner_leave(&save);
	return result;
}

/* ---- end of operations ---- */

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
	Oid			nsp = state_namespace();
	Oid			userid = GetUserId();
	Datum		args[10];
	Datum	   *from = palloc(n * sizeof(Datum));
	Datum	   *to = palloc(n * sizeof(Datum));
	Datum	   *file = palloc(n * sizeof(Datum));
	Datum	   *sha = palloc(n * sizeof(Datum));
	bool		legacy = objects_are_0_1(nsp);
	SPIPlanPtr	insert;
	int			rc;

	/* a step of the plan itself may have added a trigger */
	(void) own_table(nsp, "history");
	if (!legacy)
		(void) own_table(nsp, "tracks");
	owner_enter(&save);

	if (!owned && !legacy)
		claim_track(plan->track, userid);

	insert = legacy ? insert_0_1_plan : insert_plan;
	if (insert == NULL)
	{
		Oid			argtypes[10] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};

		if (legacy)
			insert = insert_0_1_plan =
				prepare_kept(INSERT_SQL("", ""), 10, argtypes);
		else
			insert = insert_plan =
				prepare_kept(INSERT_SQL(", dir", ", $4"), 10, argtypes);
	}
	for (int i = 0; i < n; i++)
	{
		TrekStep   *s = &plan->steps[first + i];

		from[i] = CStringGetTextDatum(s->from);
		to[i] = CStringGetTextDatum(s->to);
		file[i] = CStringGetTextDatum(s->file);
		sha[i] = CStringGetTextDatum(s->sha256);
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
	rc = SPI_execute_plan(insert, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) n)
		elog(ERROR, "could not insert into trek.history: %s",
			 SPI_result_code_string(rc));
	owner_leave(&save);
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
	Oid			nsp = state_namespace();
	int64		id;
	int			rc;

	if (objects_are_0_1(nsp))
		return -1;
	owner_enter(&save);
	if (id_plan == NULL)
		id_plan = prepare_kept("SELECT pg_catalog.nextval('trek.runs_id_seq'::pg_catalog.regclass)",
							   0, NULL);
	rc = SPI_execute_plan(id_plan, NULL, NULL, false, 1);
	id = single_int8(rc, SPI_OK_SELECT, "read trek.runs_id_seq");
	owner_leave(&save);
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
	Oid			nsp = state_namespace();
	bool		has_line;
	SPIPlanPtr	p;
	Datum		args[18];
	char		nulls[18];
	int			rc;

	if (objects_are_0_1(nsp))
		return;
	has_line = runs_have_line(nsp);
	(void) own_table(nsp, "runs");
	owner_enter(&save);
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
				prepare_kept(INSERT_RUN_SQL(", line", ", $18"), 18, argtypes);
		else
			p = insert_run_0_2_plan =
				prepare_kept(INSERT_RUN_SQL("", ""), 17, argtypes);
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
	owner_leave(&save);
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
	Oid			nsp = state_namespace();
	Datum		args[9];
	char		nulls[9];
	int64		id;
	int			rc;

	if (objects_are_0_1(nsp))
		return -1;
	(void) own_table(nsp, "runs");
	owner_enter(&save);
	if (run_plan == NULL)
	{
		Oid			argtypes[9] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			INT4OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID};

		run_plan = prepare_kept("INSERT INTO trek.runs (track, dir, from_revision,"
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
	owner_leave(&save);
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
	Oid			nsp = state_namespace();
	bool		has_line;
	SPIPlanPtr	p;
	Datum		args[7];
	char		nulls[7];
	int			rc;

	if (id < 0)
		return;
	has_line = runs_have_line(nsp);
	(void) own_table(nsp, "runs");
	owner_enter(&save);
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
			p = update_plan = prepare_kept(UPDATE_RUN_SQL(", line = $7"),
										   7, argtypes);
		else
			p = update_0_2_plan = prepare_kept(UPDATE_RUN_SQL(""), 6, argtypes);
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
	owner_leave(&save);
}

/*
 * The role whose rights trek's state is kept with (the owner of schema
 * trek).
 */
Oid
TrekStateOwner(void)
{
	return state_owner(state_namespace());
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
	Oid			nsp = state_namespace();
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
	owner_enter(&save);
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
	owner_leave(&save);
}
