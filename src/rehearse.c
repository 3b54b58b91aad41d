/*-------------------------------------------------------------------------
 *
 * rehearse.c
 *	  trek_rehearse(): a plan run and always rolled back, watching what
 *	  each statement really locks, rewrites and scans.
 *
 * The plan's steps run as trek_execute() runs them, in a subtransaction of
 * the caller's transaction that is rolled back at the end, with the short
 * lock_timeout and statement_timeout of trek.rehearse_lock_timeout and
 * trek.rehearse_statement_timeout.  Around each statement (step.c's hook)
 * this backend's own locks are read (pg_locks), and of each relation the
 * statement affects, its file (relfilenode) and the sequential scans this
 * transaction made of it (pg_stat_get_xact_numscans()).  A relation that the
 * plan itself created is not reported, as trek_check() does not report it.
 * Steps that run outside a transaction are not run: each of their
 * statements is a row with hazard "not rehearsable".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "check.h"
#include "folder.h"
#include "python.h"
#include "rehearse.h"
#include "step.h"

int			TrekRehearseLockTimeout = 1000; /* ms */
int			TrekRehearseStatementTimeout = 60000;	/* ms */

void
TrekRehearseDefineSettings(void)
{
	DefineCustomIntVariable("trek.rehearse_lock_timeout",
							"lock_timeout of the statements trek_rehearse() runs.",
							NULL,
							&TrekRehearseLockTimeout,
							1000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trek.rehearse_statement_timeout",
							"statement_timeout of the statements trek_rehearse() runs.",
							NULL,
							&TrekRehearseStatementTimeout,
							60000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* a relation watched around a statement */
typedef struct Watched
{
	Oid			relid;
	LOCKMASK	held;			/* modes this backend held before */
	int			n;				/* it and its partitions, before: */
	Oid		   *oids;
	Oid		   *filenodes;		/* their files */
	int64	   *scans;			/* their sequential scans */
	TrekCheckRow *row;			/* the prediction, or NULL */
} Watched;

typedef struct Rehearsal
{
	TrekCheckState *cs;
	MemoryContext cxt;			/* rows live here */
	List	   *rows;			/* of TrekCheckRow, observed */
	List	   *watched;		/* of Watched, around the current statement */
	LOCKMASK   *before;			/* locks held before it, by relation */
	Oid		   *before_rel;
	int			nbefore;
} Rehearsal;

/* this backend's relation locks in this database: relids and held modes */
static int
own_locks(Oid **rels, LOCKMASK **masks)
{
	LockData   *data = GetLockStatusData();
	int			n = 0;

	*rels = palloc(Max(data->nelements, 1) * sizeof(Oid));
	*masks = palloc(Max(data->nelements, 1) * sizeof(LOCKMASK));
	for (int i = 0; i < data->nelements; i++)
	{
		LockInstanceData *l = &data->locks[i];
		int			k;

		if (l->pid != MyProcPid ||
			l->locktag.locktag_type != LOCKTAG_RELATION ||
			l->locktag.locktag_field1 != MyDatabaseId ||
			l->holdMask == 0)
			continue;
		for (k = 0; k < n; k++)
			if ((*rels)[k] == l->locktag.locktag_field2)
				break;
		if (k == n)
		{
			(*rels)[n] = l->locktag.locktag_field2;
			(*masks)[n++] = 0;
		}
		(*masks)[k] |= l->holdMask;
	}
	return n;
}

static LOCKMASK
mask_of(Oid *rels, LOCKMASK *masks, int n, Oid relid)
{
	for (int k = 0; k < n; k++)
		if (rels[k] == relid)
			return masks[k];
	return 0;
}

/*
 * The files of relid (and of its partitions, for a partitioned table) and
 * the sequential scans this transaction made of each: n entries.
 */
static int
files_and_scans(Oid relid, Oid **oids, Oid **filenodes, int64 **scans)
{
	List	   *rels = list_make1_oid(relid);
	ListCell   *lc;
	int			n = 0;

	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		rels = find_all_inheritors(relid, NoLock, NULL);
	*oids = palloc(list_length(rels) * sizeof(Oid));
	*filenodes = palloc(list_length(rels) * sizeof(Oid));
	*scans = palloc(list_length(rels) * sizeof(int64));
	foreach(lc, rels)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			continue;
		(*oids)[n] = lfirst_oid(lc);
		(*filenodes)[n] = ((Form_pg_class) GETSTRUCT(tup))->relfilenode;
		ReleaseSysCache(tup);
		(*scans)[n] = DatumGetInt64(DirectFunctionCall1(pg_stat_get_xact_numscans,
														ObjectIdGetDatum(lfirst_oid(lc))));
		n++;
	}
	return n;
}

/* did the plan (this transaction) create relid? */
static bool
created_here(Oid relid)
{
	Relation	rel = RelationIdGetRelation(relid);
	bool		created;

	if (rel == NULL)
		return true;
	created = rel->rd_createSubid != InvalidSubTransactionId;
	RelationClose(rel);
	return created;
}

static void
watch(Rehearsal *r, Oid relid, TrekCheckRow *row)
{
	Watched    *w = palloc0(sizeof(Watched));

	w->relid = relid;
	w->row = row;
	w->held = mask_of(r->before_rel, r->before, r->nbefore, relid);
	w->n = files_and_scans(relid, &w->oids, &w->filenodes, &w->scans);
	r->watched = lappend(r->watched, w);
}

static LOCKMODE
strongest(LOCKMASK mask)
{
	for (LOCKMODE m = MaxLockMode; m > NoLock; m--)
		if (mask & LOCKBIT_ON(m))
			return m;
	return NoLock;
}

/* before a statement: the prediction, and what is held and watched now */
static void
before_statement(Rehearsal *r, TrekStepInfo *info, RawStmt *raw)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(r->cxt);
	List	   *predicted;
	ListCell   *lc;
	char	   *statement = NULL;
	int			line = 0;

	r->watched = NIL;
	r->nbefore = own_locks(&r->before_rel, &r->before);
	if (raw != NULL)
	{
		predicted = TrekCheckStatement(r->cs, info, raw, strlen(info->text));
		foreach(lc, predicted)
		{
			TrekCheckRow *row = lfirst(lc);

			statement = row->statement;
			line = row->line;
			if (OidIsValid(row->relation) && !created_here(row->relation))
				watch(r, row->relation, row);
		}
	}
	/* a row for the statement itself, whatever it touches */
	{
		TrekCheckRow *row = palloc0(sizeof(TrekCheckRow));

		row->step = info->step;
		row->file = info->file;
		row->line = line;
		row->statement = statement;
		row->rows = row->bytes = -1;
		row->rewrites = row->scans = -1;
		r->watched = lappend(r->watched, row);	/* marker: last element */
	}
	MemoryContextSwitchTo(oldcxt);
}

/* after it: what it took, rewrote and scanned */
static void
after_statement(Rehearsal *r)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(r->cxt);
	Oid		   *rels;
	LOCKMASK   *masks;
	int			n = own_locks(&rels, &masks);
	TrekCheckRow *self = llast(r->watched);
	bool		any = false;
	ListCell   *lc;

	r->watched = list_delete_last(r->watched);
	foreach(lc, r->watched)
	{
		Watched    *w = lfirst(lc);
		TrekCheckRow *row = palloc0(sizeof(TrekCheckRow));
		Oid		   *oids;
		Oid		   *filenodes;
		int64	   *scans;
		int			m = files_and_scans(w->relid, &oids, &filenodes, &scans);

		*row = *w->row;
		/* of the relations there before and still there */
		row->rewrites = 0;
		row->scans = 0;
		for (int a = 0; a < w->n; a++)
			for (int b = 0; b < m; b++)
				if (w->oids[a] == oids[b])
				{
					row->rewrites |= filenodes[b] != w->filenodes[a];
					row->scans |= scans[b] > w->scans[a];
				}

		/*
		 * What it took that the transaction did not hold, and the mode
		 * predicted if the transaction held that already: a lock held is not
		 * taken again, so pg_locks cannot tell it apart.
		 */
		row->lock = strongest((mask_of(rels, masks, n, w->relid) & ~w->held) |
							  (w->held & LOCKBIT_ON(w->row->lock)));
		if (row->lock == NoLock)
			row->lock = strongest(w->held);
		row->advice = NULL;
		TrekCheckHazard(row);
		r->rows = lappend(r->rows, row);
		any = true;
	}

	/* relations it locked that the prediction did not name: locks only */
	for (int k = 0; k < n; k++)
	{
		LOCKMASK	fresh = masks[k] & ~mask_of(r->before_rel, r->before,
												r->nbefore, rels[k]);
		char		relkind;
		TrekCheckRow *row;
		bool		named = false;

		if (fresh == 0 || rels[k] < FirstNormalObjectId)
			continue;
		foreach(lc, r->watched)
			named |= ((Watched *) lfirst(lc))->relid == rels[k];
		relkind = get_rel_relkind(rels[k]);
		if (named || created_here(rels[k]) ||
			(relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
			 relkind != RELKIND_MATVIEW && relkind != RELKIND_FOREIGN_TABLE))
			continue;
		row = palloc(sizeof(TrekCheckRow));
		*row = *self;
		row->relation = rels[k];
		row->lock = strongest(fresh);
		row->rewrites = row->scans = -1;
		TrekCheckSize(rels[k], &row->rows, &row->bytes);
		r->rows = lappend(r->rows, row);
		any = true;
	}
	if (!any)
		r->rows = lappend(r->rows, self);
	MemoryContextSwitchTo(oldcxt);
}

static void
statement_hook(void *arg, TrekStepInfo *info, RawStmt *raw, bool after)
{
	Rehearsal  *r = (Rehearsal *) arg;

	if (after)
		after_statement(r);
	else
		before_statement(r, info, raw);
}

/* step i of plan, outside a transaction: its statements, not run */
static void
not_rehearsable(Rehearsal *r, TrekStepInfo *info, char *text, int len)
{
	List	   *stmts;
	ListCell   *lc;

	info->top_level = true;
	stmts = TrekStepParse(info, text, len);
	foreach(lc, stmts)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(r->cxt);
		TrekCheckRow *row = TrekCheckStatementRow(info, lfirst_node(RawStmt, lc),
												  len);

		row->rewrites = row->scans = -1;
		row->hazard = "not rehearsable";
		row->advice = "The step runs outside a transaction, so it cannot be rolled back.";
		r->rows = lappend(r->rows, row);
		MemoryContextSwitchTo(oldcxt);
	}
}

static void
rehearse_steps(Rehearsal *r, TrekPlan *plan, TrekFolder *folder)
{
	int			nest = NewGUCNestLevel();
	char		value[32];

	snprintf(value, sizeof(value), "%d", TrekRehearseLockTimeout);
	(void) set_config_option("lock_timeout", value, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	snprintf(value, sizeof(value), "%d", TrekRehearseStatementTimeout);
	(void) set_config_option("statement_timeout", value, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	for (int i = 0; i < plan->nsteps; i++)
	{
		TrekStepInfo info;
		ErrorContextCallback cb;
		int			error_line = 0;
		int			len;
		bool		no_transaction;
		char	   *text;

		CHECK_FOR_INTERRUPTS();
		text = TrekStepRead(plan, i, folder, &info, &cb, &error_line, true,
							&len, &no_transaction);
		info.text = text;
		if (no_transaction)
			not_rehearsable(r, &info, text, len);
		else if (plan->steps[i].python)
		{
			before_statement(r, &info, NULL);
			TrekPythonRun(plan->steps[i].file, text, len, &info.line);
			after_statement(r);
		}
		else
			TrekStepRunSql(&info, text, len, statement_hook, r);
		error_context_stack = cb.previous;
	}
	AtEOXact_GUC(false, nest);
}

/*
 * trek_rehearse(): run plan in a subtransaction that is always rolled
 * back, and return per statement what it did.
 */
void
TrekRehearse(FunctionCallInfo fcinfo, TrekPlan *plan)
{
	ReturnSetInfo *rsinfo;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TrekFolder *folder;
	Rehearsal	r;
	ListCell   *lc;

	if (TrekExecuting())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_rehearse() cannot be called from inside a migration")));
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	folder = TrekFolderOfPlan(plan);
	TrekStepCheckPython(plan, 0);

	memset(&r, 0, sizeof(r));
	r.cxt = AllocSetContextCreate(cxt, "trek rehearsal", ALLOCSET_DEFAULT_SIZES);
	r.cs = TrekCheckBegin(plan, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	TrekSetExecuting(true);
	PG_TRY();
	{
		rehearse_steps(&r, plan, folder);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * The subtransaction is rolled back before the error goes on: an
		 * internal one left open would leave the session in a failed
		 * transaction block, even in autocommit mode.
		 */
		TrekSetExecuting(false);
		edata = TrekCheckRollback(cxt, owner);
		ReThrowError(edata);
	}
	PG_END_TRY();
	TrekSetExecuting(false);
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	SPI_finish();
	TrekFolderClose(folder);

	foreach(lc, r.rows)
		TrekCheckPutRow(fcinfo, lfirst(lc));
	(void) rsinfo;
}
