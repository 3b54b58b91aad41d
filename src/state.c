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
#define TREK_LOCK_KIND	0x7472	/* "tr": not 1 or 2 */

/* statements on trek's state, prepared once per backend */
static SPIPlanPtr current_plan = NULL;
static SPIPlanPtr state_plan = NULL;

#define CURRENT_SQL \
	"SELECT to_revision FROM trek.history" \
	" WHERE track OPERATOR(pg_catalog.=) $1 ORDER BY id DESC LIMIT 1"


/*
 * Prepare a statement on trek's own state once per backend and keep it.
 */
SPIPlanPtr
TrekStatePrepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

	if (p == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(p);
	return p;
}

Oid
TrekStateNamespace(void)
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
 * Undone by TrekStateOwnerLeave(), or by the abort of the (sub)transaction.
 */
void
TrekStateOwnerEnter(TrekOwnerSave *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec);
	SetUserIdAndSecContext(state_owner(TrekStateNamespace()),
						   save->sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

void
TrekStateOwnerLeave(TrekOwnerSave *save)
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
Oid
TrekStateOwnTable(Oid nsp, const char *name)
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
bool
TrekStateIs01(Oid nsp)
{
	return !OidIsValid(get_relname_relid("tracks", nsp));
}

/*
 * The tags of track's lock (SHA-256 needs a transaction: OpenSSL's
 * contexts belong to a resource owner).
 */
static void
lock_tags(const char *track, TrekTrackLock *lock)
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
	lock_tags(track, lock);
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
	TrekStateOwnerEnter(&save);
	if (current_plan == NULL)
		current_plan = TrekStatePrepare(CURRENT_SQL, 1, argtypes);
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
	TrekStateOwnerLeave(&save);
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
	Oid			nsp = TrekStateNamespace();
	bool		legacy = TrekStateIs01(nsp);

	/* refuse early, before any step runs; TrekStateRecord checks again */
	(void) TrekStateOwnTable(nsp, "history");
	if (!legacy)
		(void) TrekStateOwnTable(nsp, "tracks");
	TrekStateOwnerEnter(&save);
	if (legacy && current_plan == NULL)
		current_plan = TrekStatePrepare(CURRENT_SQL, 1, argtypes);
	if (!legacy && state_plan == NULL)
		state_plan = TrekStatePrepare("SELECT (SELECT h.to_revision FROM trek.history h"
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
	TrekStateOwnerLeave(&save);
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
