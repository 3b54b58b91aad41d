/*-------------------------------------------------------------------------
 *
 * runs.c
 *	  Runs of trek_execute() in shared memory, and the list of all runs.
 *
 * A trek_execute() run lives in its caller's transaction, so a row it
 * writes in trek.runs is seen by nobody until that commits, and is gone if
 * it rolls back.  So while it runs, and after it failed until the record
 * is written, the run is kept in shared memory: one slot per backend, which
 * only that backend's runs use, so that no failure can take more than its
 * own slot, however many a session makes.  trek_runs() shows the slots of
 * this database together with trek.runs.
 *
 * A slot's record goes into trek.runs with the run's transaction when the
 * run succeeds, and otherwise with the next transaction of this database
 * that writes trek's state (TrekRunsPersist: the next trek_execute(),
 * trek_migrate() or trek_stamp() of any session).  Until then it stays in
 * the slot, also after its session ended, unless the backend that takes
 * the slot over starts a run of its own first, or the server restarts.
 *
 * A record belongs to the trek of its database that began it: one of a
 * trek since dropped (DROP EXTENSION, then CREATE EXTENSION) is neither
 * written into the new trek.runs, where its id means another run, nor
 * shown; it stays in its slot until that backend's next run.
 *
 * The shared memory comes from shared_preload_libraries (all majors), or,
 * on PostgreSQL 17 and later, from the dynamic shared memory registry
 * without any configuration.  On 15 and 16 without the preload there are
 * no slots: trek_execute() runs are then seen only once committed, and a
 * failed one is not recorded.
 *
 * Longer than most rooms: the slots' shared memory, their transaction and
 * exit callbacks, and the merge of slots with trek.runs in trek_runs() use
 * one slot layout that no other room needs to see.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "compat.h"
#ifdef TREK_HAVE_DSM_REGISTRY
#include "storage/dsm_registry.h"
#endif

#include "runs.h"
#include "runrows.h"
#include "state.h"

/* what a slot holds */
typedef enum TrekSlotPhase
{
	TREK_SLOT_FREE,
	TREK_SLOT_RUNNING,			/* a run in progress */
	TREK_SLOT_DONE,				/* done; written with its transaction */
	TREK_SLOT_FINISHED			/* failed or interrupted: to be written */
} TrekSlotPhase;

typedef struct TrekRunSlot
{
	slock_t		mutex;
	TrekSlotPhase phase;
	TrekRunRecord rec;
} TrekRunSlot;

typedef struct TrekRunSlots
{
	int			nslots;
	TrekRunSlot slots[FLEXIBLE_ARRAY_MEMBER];
} TrekRunSlots;

/*
 * Set by the shared memory start-up hook (in the postmaster, inherited by
 * every backend) or on first use from the registry: where the slots are.
 */
static TrekRunSlots *run_slots = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * This backend's run, for the transaction callbacks (which PostgreSQL
 * calls without an argument of ours): the slot it uses, and the
 * subtransaction whose end decides the fate of a done run.
 */
static TrekRunSlot *my_slot = NULL;
static SubTransactionId my_subid = InvalidSubTransactionId;
static bool callbacks_registered = false;

/*
 * Ids of finished runs this transaction wrote (TrekRunsPersist), and the
 * subtransaction that wrote them.
 */
static List *persisted_ids = NIL;
static Oid	persisted_extension = InvalidOid;
static SubTransactionId persisted_subid = InvalidSubTransactionId;

/* trek's pg_extension row in this database (InvalidOid: none); needs a transaction */
static Oid
current_extension(void)
{
	return get_extension_oid("trek", true);
}

/* is rec a run of this database's trek, whose pg_extension row is ext? */
static bool
ours(const TrekRunRecord *rec, Oid ext)
{
	return rec->database == MyDatabaseId && rec->extension == ext;
}

static Size
slots_size(void)
{
	return add_size(offsetof(TrekRunSlots, slots),
					mul_size(MaxBackends, sizeof(TrekRunSlot)));
}

static void
slots_init(void *ptr)
{
	TrekRunSlots *s = (TrekRunSlots *) ptr;

	s->nslots = MaxBackends;
	for (int i = 0; i < s->nslots; i++)
	{
		SpinLockInit(&s->slots[i].mutex);
		s->slots[i].phase = TREK_SLOT_FREE;
	}
}

static void
runs_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(slots_size());
}

static void
runs_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	run_slots = ShmemInitStruct("trek runs", slots_size(), &found);
	if (!found)
		slots_init(run_slots);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * From _PG_init: when trek is in shared_preload_libraries, ask for the
 * slots' shared memory.
 */
void
TrekRunsInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = runs_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = runs_shmem_startup;
}

/* the slots, or NULL where there are none (see the file's comment) */
static TrekRunSlots *
slots(void)
{
	if (run_slots == NULL && IsUnderPostmaster)
	{
		bool		found;

		run_slots = TrekNamedSharedMemory("trek runs", slots_size(),
										  slots_init, &found);
	}
	return run_slots;
}

/* copy src into dst of size bytes, cut at a character boundary */
void
TrekRunsCopy(char *dst, const char *src, int size)
{
	int			len = strlen(src);

	if (len >= size)
		len = pg_mbcliplen(src, len, size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int
my_slot_number(void)
{
	return TrekMyProcNumber();
}

/* a run of ours that has not ended well ends as state, with message */
static void
end_run(const char *state, const char *message)
{
	SpinLockAcquire(&my_slot->mutex);
	if (my_slot->phase == TREK_SLOT_RUNNING || my_slot->phase == TREK_SLOT_DONE)
	{
		my_slot->phase = TREK_SLOT_FINISHED;
		strlcpy(my_slot->rec.state, state, sizeof(my_slot->rec.state));
		my_slot->rec.steps_done = 0;
		my_slot->rec.finished_at = GetCurrentTimestamp();
		my_slot->rec.current_since = 0;
		if (my_slot->rec.message[0] == '\0')
			strlcpy(my_slot->rec.message, message, sizeof(my_slot->rec.message));
	}
	SpinLockRelease(&my_slot->mutex);
}

/*
 * End of a transaction: a done run's record was written with it (commit:
 * the slot is free again) or rolled back with it (abort: the run failed
 * after all, and nothing it did stayed).  Finished runs that this
 * transaction wrote into trek.runs free their slots at commit.
 */
static void
runs_xact_callback(XactEvent event, void *arg)
{
	TrekRunSlots *s = run_slots;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
		return;
	if (my_slot != NULL)
	{
		/* a prepared transaction holds the run's row now */
		bool		commit = (event == XACT_EVENT_COMMIT ||
							  event == XACT_EVENT_PARALLEL_COMMIT ||
							  event == XACT_EVENT_PREPARE);

		if (commit)
		{
			SpinLockAcquire(&my_slot->mutex);
			if (my_slot->phase == TREK_SLOT_DONE)
				my_slot->phase = TREK_SLOT_FREE;
			SpinLockRelease(&my_slot->mutex);
		}
		else
			end_run(TREK_RUN_FAILED,
					"the transaction that ran the plan rolled back");
		my_subid = InvalidSubTransactionId;
	}
	if (s != NULL && persisted_ids != NIL &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT))
	{
		for (int i = 0; i < s->nslots; i++)
		{
			TrekRunSlot *slot = &s->slots[i];

			SpinLockAcquire(&slot->mutex);
			if (slot->phase == TREK_SLOT_FINISHED &&
				ours(&slot->rec, persisted_extension))
			{
				ListCell   *lc;

				foreach(lc, persisted_ids)
				{
					if (*(int64 *) lfirst(lc) == slot->rec.id)
					{
						slot->phase = TREK_SLOT_FREE;
						break;
					}
				}
			}
			SpinLockRelease(&slot->mutex);
		}
	}
	/* the list lived in the transaction's memory */
	persisted_ids = NIL;
}

/*
 * A subtransaction that a done run belongs to: rolled back, the run failed
 * after all; committed, the run now belongs to its parent.
 */
static void
runs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (persisted_ids != NIL && persisted_subid == mySubid)
	{
		if (event == SUBXACT_EVENT_ABORT_SUB)
			persisted_ids = NIL;
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			persisted_subid = parentSubid;
	}
	if (my_slot == NULL || my_subid != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		end_run(TREK_RUN_FAILED, "the transaction that ran the plan rolled back");
		my_subid = InvalidSubTransactionId;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		my_subid = parentSubid;
}

/* the session ends: a run that did not end here was interrupted */
static void
runs_exit_callback(int code, Datum arg)
{
	if (my_slot != NULL)
		end_run(TREK_RUN_INTERRUPTED, "the session ended during the run");
}

/* the transaction and exit callbacks above, once per backend */
static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(runs_xact_callback, NULL);
	RegisterSubXactCallback(runs_subxact_callback, NULL);
	before_shmem_exit(runs_exit_callback, (Datum) 0);
	callbacks_registered = true;
}

/*
 * A trek_execute() run starts, as rec says: from now on other sessions see
 * it.  Its slot is this backend's; what the slot still held (a failure no
 * transaction wrote yet) is written by the run's own transaction, since
 * TrekRunsPersist() ran before.
 */
void
TrekRunsBegin(const TrekRunRecord *rec)
{
	TrekRunSlots *s = slots();
	int			n = my_slot_number();
	Oid			ext;

	if (s == NULL || n < 0 || n >= s->nslots)
		return;
	ext = current_extension();
	register_callbacks();
	my_slot = &s->slots[n];
	my_subid = InvalidSubTransactionId;
	SpinLockAcquire(&my_slot->mutex);
	my_slot->rec = *rec;
	my_slot->rec.extension = ext;
	my_slot->phase = TREK_SLOT_RUNNING;
	SpinLockRelease(&my_slot->mutex);
}

/* step (0-based) of the run is starting; it reads current_file */
void
TrekRunsProgress(int step, const char *current_file)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&my_slot->mutex);
	my_slot->rec.steps_done = step;
	TrekRunsCopy(my_slot->rec.current_file, current_file,
				 sizeof(my_slot->rec.current_file));
	my_slot->rec.current_since = GetCurrentTimestamp();
	SpinLockRelease(&my_slot->mutex);
}

/*
 * The run failed in file (NULL: before or between steps), at line (0: not
 * known), with an error: nothing of it stays, its transaction rolls back.
 */
void
TrekRunsFailed(const char *file, int line, int sqlerrcode,
			   const char *message)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&my_slot->mutex);
	if (my_slot->phase == TREK_SLOT_RUNNING)
	{
		my_slot->phase = TREK_SLOT_FINISHED;
		strlcpy(my_slot->rec.state, TREK_RUN_FAILED, sizeof(my_slot->rec.state));
		my_slot->rec.steps_done = 0;
		if (file != NULL)
			TrekRunsCopy(my_slot->rec.current_file, file,
						 sizeof(my_slot->rec.current_file));
		my_slot->rec.current_since = 0;
		my_slot->rec.line = line;
		strlcpy(my_slot->rec.sqlstate, unpack_sql_state(sqlerrcode),
				sizeof(my_slot->rec.sqlstate));
		TrekRunsCopy(my_slot->rec.message, message ? message : "",
					 sizeof(my_slot->rec.message));
		my_slot->rec.finished_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&my_slot->mutex);
	my_slot = NULL;
}

/*
 * The run is done, and its row is in trek.runs with its transaction (of
 * which the current subtransaction is part): until that ends, the slot
 * shows it running.
 */
void
TrekRunsDone(void)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&my_slot->mutex);
	my_slot->phase = TREK_SLOT_DONE;
	my_slot->rec.steps_done = my_slot->rec.steps_planned;
	my_slot->rec.current_file[0] = '\0';
	my_slot->rec.current_since = 0;
	SpinLockRelease(&my_slot->mutex);
	my_subid = GetCurrentSubTransactionId();
}

/*
 * Write the finished runs of this database that are only in shared memory
 * into trek.runs, in the current transaction; their slots are freed when
 * it commits.  Needs SPI.
 */
void
TrekRunsPersist(void)
{
	TrekRunSlots *s = slots();
	TrekRunRecord *rec;
	Oid			ext;

	if (s == NULL)
		return;
	if (persisted_ids != NIL && persisted_subid != GetCurrentSubTransactionId())
		return;					/* written by an enclosing (sub)transaction */
	persisted_subid = GetCurrentSubTransactionId();
	ext = current_extension();
	persisted_extension = ext;

	/*
	 * The list lives in the transaction's memory: the end-of-transaction
	 * callback must be there to forget it, also if an insert below fails.
	 */
	register_callbacks();
	rec = palloc(sizeof(TrekRunRecord));
	for (int i = 0; i < s->nslots; i++)
	{
		TrekRunSlot *slot = &s->slots[i];
		bool		found = false;

		SpinLockAcquire(&slot->mutex);
		if (slot->phase == TREK_SLOT_FINISHED && ours(&slot->rec, ext))
		{
			*rec = slot->rec;
			found = true;
		}
		SpinLockRelease(&slot->mutex);
		if (found)
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
			int64	   *id = palloc(sizeof(int64));

			*id = rec->id;
			persisted_ids = lappend(persisted_ids, id);
			MemoryContextSwitchTo(old);
			TrekStateRunInsert(rec);
		}
	}
	pfree(rec);
}

/* may role userid see record rec (see TrekStateRuns)? */
static bool
may_see(const TrekRunRecord *rec, Oid userid)
{
	if (superuser_arg(userid))
		return true;
	if (OidIsValid(rec->owner))
		return has_privs_of_role(userid, rec->owner);
	return rec->run_by_id == userid;
}

/*
 * Copies of the records in shared memory of this database (of track, if
 * not NULL) that the current user may see, newest first; *n of them.
 * Running records whose backend is gone are interrupted.
 */
static TrekRunRecord *
shared_records(const char *track, int *n)
{
	TrekRunSlots *s = slots();
	TrekRunRecord *recs;
	int			count = 0;
	Oid			userid = GetUserId();
	Oid			ext;

	*n = 0;
	if (s == NULL)
		return NULL;
	ext = current_extension();
	recs = palloc(Max(s->nslots, 1) * sizeof(TrekRunRecord));
	for (int i = 0; i < s->nslots; i++)
	{
		TrekRunSlot *slot = &s->slots[i];
		bool		found = false;

		SpinLockAcquire(&slot->mutex);
		if (slot->phase != TREK_SLOT_FREE && ours(&slot->rec, ext))
		{
			recs[count] = slot->rec;
			if (slot->phase != TREK_SLOT_FINISHED)
				strlcpy(recs[count].state, TREK_RUN_RUNNING,
						sizeof(recs[count].state));
			found = true;
		}
		SpinLockRelease(&slot->mutex);
		if (found && (track == NULL || strcmp(recs[count].track, track) == 0) &&
			may_see(&recs[count], userid))
			count++;
	}
	/* newest first */
	for (int i = 1; i < count; i++)
	{
		TrekRunRecord tmp = recs[i];
		int			j = i;

		while (j > 0 && recs[j - 1].id < tmp.id)
		{
			recs[j] = recs[j - 1];
			j--;
		}
		recs[j] = tmp;
	}
	*n = count;
	return recs;
}

#define TREK_RUNS_COLS 18

/* a row of trek_runs() from a record in shared memory */
static void
put_record(Tuplestorestate *ts, TupleDesc desc, const TrekRunRecord *r)
{
	Datum		values[TREK_RUNS_COLS];
	bool		nulls[TREK_RUNS_COLS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(r->id);
	values[1] = CStringGetTextDatum(r->track);
	values[2] = CStringGetTextDatum(r->dir);
	values[3] = CStringGetTextDatum(r->from);
	values[4] = CStringGetTextDatum(r->target);
	values[5] = CStringGetTextDatum("execute");
	values[6] = CStringGetTextDatum(r->state);
	values[7] = Int32GetDatum(r->steps_done);
	values[8] = Int32GetDatum(r->steps_planned);
	values[9] = CStringGetTextDatum(r->current_file);
	nulls[9] = r->current_file[0] == '\0';
	values[10] = Int32GetDatum(r->line);
	nulls[10] = r->line <= 0;
	values[11] = TimestampTzGetDatum(r->current_since);
	nulls[11] = r->current_since == 0;
	values[12] = TimestampTzGetDatum(r->started_at);
	values[13] = TimestampTzGetDatum(r->finished_at);
	nulls[13] = r->finished_at == 0;
	values[14] = CStringGetTextDatum(r->run_by);
	values[15] = Int32GetDatum(r->pid);
	values[16] = CStringGetTextDatum(r->sqlstate);
	nulls[16] = r->sqlstate[0] == '\0';
	values[17] = CStringGetTextDatum(r->message);
	nulls[17] = r->message[0] == '\0';
	tuplestore_putvalues(ts, desc, values, nulls);
}

/*
 * trek_runs(track): the rows of trek.runs the current user may see and the
 * runs in shared memory not yet written there, newest first.
 */
void
TrekRunsList(FunctionCallInfo fcinfo, const char *track)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt = CurrentMemoryContext;
	TrekRunRecord *shared;
	int			nshared;
	int			next = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != TREK_RUNS_COLS)
		elog(ERROR, "trek_runs() has %d columns, expected %d",
			 rsinfo->setDesc->natts, TREK_RUNS_COLS);
	shared = shared_records(track, &nshared);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	TrekStateRuns(track, GetUserId());
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		values[TREK_RUNS_COLS];
		bool		nulls[TREK_RUNS_COLS];
		bool		isnull;
		int64		id;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		old = MemoryContextSwitchTo(cxt);
		for (; next < nshared && shared[next].id >= id; next++)
		{
			/* a record written meanwhile is the table's */
			if (shared[next].id != id)
				put_record(rsinfo->setResult, rsinfo->setDesc, &shared[next]);
		}
		MemoryContextSwitchTo(old);
		for (int c = 0; c < TREK_RUNS_COLS; c++)
		{
			values[c] = SPI_getbinval(tup, desc, c + 1, &nulls[c]);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	for (; next < nshared; next++)
		put_record(rsinfo->setResult, rsinfo->setDesc, &shared[next]);
}

/*
 * The state of the newest run on track, in trek.runs or in shared memory,
 * in cxt; NULL if it has none.  Needs SPI.
 */
char *
TrekRunsLast(const char *track, MemoryContext cxt)
{
	int64		id;
	char	   *state = TrekStateLastRun(track, &id, cxt);
	TrekRunSlots *s = slots();
	Oid			ext;

	if (s == NULL)
		return state;
	ext = current_extension();
	for (int i = 0; i < s->nslots; i++)
	{
		TrekRunSlot *slot = &s->slots[i];
		char		found[sizeof(slot->rec.state)];

		found[0] = '\0';
		SpinLockAcquire(&slot->mutex);
		if (slot->phase != TREK_SLOT_FREE && ours(&slot->rec, ext) &&
			slot->rec.id > id && strcmp(slot->rec.track, track) == 0)
		{
			id = slot->rec.id;
			strlcpy(found, slot->phase == TREK_SLOT_FINISHED ?
					slot->rec.state : TREK_RUN_RUNNING, sizeof(found));
		}
		SpinLockRelease(&slot->mutex);
		if (found[0] != '\0')
			state = MemoryContextStrdup(cxt, found);
	}
	return state;
}
