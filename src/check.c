/*-------------------------------------------------------------------------
 *
 * check.c
 *	  The safety gate: what each statement of a plan will lock, rewrite and
 *	  scan on this database, before it runs.
 *
 * Each step's file is read and parsed as it will run (step.c), and each
 * statement is looked at with the server's own grammar and catalog: the
 * lock level of an ALTER TABLE is what the server's own code says
 * (AlterTableGetLockLevel), other statements take the locks their commands
 * take; whether a statement rewrites or scans a table is predicted from the
 * catalog (casts, volatility, constraints already validated, the table's
 * persistence and access method), and the table's size is its size now.
 * Nothing of the plan runs, and no lock stronger than reading needs is
 * taken: a table's size is measured only if its AccessShareLock is free at
 * once, else estimated from pg_class.
 *
 * trek_check() returns what is found; trek_migrate() and trek_execute()
 * call TrekCheckGate() before their first step, which refuses (or warns
 * of) a statement that blocks traffic for a time that grows with the size
 * of a large table, unless the step's file accepts that hazard with a
 * "-- trek:allow <hazard>" line.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/sysattr.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "commands/tablecmds.h"
#include "mb/pg_wchar.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_type.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "check.h"
#include "compat.h"
#include "folder.h"
#include "parse.h"
#include "step.h"

int			TrekHazardsSetting = TREK_HAZARDS_REFUSE;
int			TrekLargeTable = 10240; /* kB */

static const struct config_enum_entry hazards_options[] = {
	{"refuse", TREK_HAZARDS_REFUSE, false},
	{"warn", TREK_HAZARDS_WARN, false},
	{"off", TREK_HAZARDS_OFF, false},
	{NULL, 0, false}
};

/* the hazards a "-- trek:allow" line may name */
#define HAZARD_REWRITE "rewrite"
#define HAZARD_SCAN "scan"
#define HAZARD_INDEX "index build"
#define HAZARD_ALL_ROWS "all rows"
#define HAZARD_OPAQUE "opaque"

static const char *const hazard_names[] = {
	HAZARD_REWRITE, HAZARD_SCAN, HAZARD_INDEX, HAZARD_ALL_ROWS, NULL
};

#define ADVICE_INDEX "Build the index with CREATE INDEX CONCURRENTLY, in a step of its own that runs outside a transaction (first line \"-- trek:no-transaction\"), applied with CALL trek_migrate()."
#define ADVICE_REINDEX "Rebuild with REINDEX ... CONCURRENTLY, in a step of its own that runs outside a transaction (first line \"-- trek:no-transaction\")."
#define ADVICE_CONSTRAINT "Add the constraint with NOT VALID in one step, and VALIDATE CONSTRAINT it in a later step: validating takes a lock that lets reads and writes go on."
#define ADVICE_NOT_NULL "Add CHECK (column IS NOT NULL) NOT VALID in one step, VALIDATE CONSTRAINT it in a later one, then SET NOT NULL, which finds the validated CHECK and does not scan."
#define ADVICE_KEY "Build a unique index with CREATE UNIQUE INDEX CONCURRENTLY in a step outside a transaction, then ADD CONSTRAINT ... PRIMARY KEY (or UNIQUE) USING INDEX in a later step."
#define ADVICE_TYPE "Add a new column of the new type, fill it in batches over several steps, and switch to it in a later step; or change to a type the old one is binary-coercible to (varchar(n) to a larger n or to text)."
#define ADVICE_DEFAULT "Add the column with a constant default (or none), then fill it in batches over several steps."
#define ADVICE_ATTACH "Add a CHECK constraint matching the partition's bounds to the table (NOT VALID, then VALIDATE in a later step) before attaching it: ATTACH PARTITION then skips its scan."
#define ADVICE_REWRITE "This rewrites the whole table while holding its lock: run it where its time is acceptable, or copy the data to a new table in batches."
#define ADVICE_REFRESH "Refresh with REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view), which lets reads go on."
#define ADVICE_ALL_ROWS "Change the rows in batches (a range of keys per statement) over several steps, or in a step outside a transaction that commits each batch."

void
TrekCheckDefineSettings(void)
{
	DefineCustomEnumVariable("trek.hazards",
							 "What trek_migrate() and trek_execute() do with a step that blocks traffic on a large table for a time that grows with its size.",
							 "refuse: refuse the plan before anything runs; warn: run it with a WARNING; off: do not check.",
							 &TrekHazardsSetting,
							 TREK_HAZARDS_REFUSE,
							 hazards_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("trek.large_table",
							"Size from which a table is large for the safety gate.",
							"A statement that rewrites or scans a table larger than this while blocking reads or writes is a hazard.",
							&TrekLargeTable,
							10240,
							0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/* what a statement does to one relation, before it is looked up */
typedef struct Target
{
	RangeVar   *rv;				/* or NULL, and relid */
	Oid			relid;
	LOCKMODE	lock;
	int			rewrites;
	int			scans;
	bool		every_row;
	bool		index_build;
	bool		empties;
	const char *advice;
} Target;

/* a relation created (or dropped) earlier in the plan */
struct TrekCheckState
{
	TrekPlan   *plan;
	MemoryContext cxt;			/* where the tables live */
	HTAB	   *created;		/* names made new by the plan (CreatedName) */
	List	   *renamed;		/* of Renamed: existing relations renamed */
	List	   *dropped_keys;	/* OIDs of foreign keys the plan dropped */
	HTAB	   *sizes;			/* relations measured (MeasuredSize), or NULL:
								 * the rehearsal measures again each time */
};

/* the schemas in which the plan made a relation of one name */
typedef struct CreatedName
{
	char		name[NAMEDATALEN];	/* key */
	List	   *schemas;		/* of char *, NULL for an unqualified name */
} CreatedName;

/* a relation's size, measured once per check */
typedef struct MeasuredSize
{
	Oid			relid;			/* key */
	int64		rows;
	int64		bytes;
} MeasuredSize;

/*
 * A check of plan; cache_sizes: each relation is measured once (not for a
 * rehearsal, where the statements change them).
 */
TrekCheckState *
TrekCheckBegin(TrekPlan *plan, bool cache_sizes)
{
	TrekCheckState *cs = palloc0(sizeof(TrekCheckState));
	HASHCTL		ctl;

	cs->plan = plan;
	cs->cxt = CurrentMemoryContext;
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(CreatedName);
	ctl.hcxt = cs->cxt;
	cs->created = hash_create("trek created relations", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	if (cache_sizes)
	{
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(MeasuredSize);
		cs->sizes = hash_create("trek relation sizes", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return cs;
}

static void
note_created(TrekCheckState *cs, RangeVar *rv)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cs->cxt);
	char		key[NAMEDATALEN];
	CreatedName *c;
	bool		found;

	strlcpy(key, rv->relname, NAMEDATALEN);
	c = hash_search(cs->created, key, HASH_ENTER, &found);
	if (!found)
		c->schemas = NIL;
	c->schemas = lappend(c->schemas,
						 rv->schemaname ? pstrdup(rv->schemaname) : NULL);
	MemoryContextSwitchTo(oldcxt);
}

/* does rv name a relation that the plan made anew before this statement? */
static bool
is_created(TrekCheckState *cs, RangeVar *rv)
{
	char		key[NAMEDATALEN];
	CreatedName *c;
	ListCell   *lc;

	strlcpy(key, rv->relname, NAMEDATALEN);
	c = hash_search(cs->created, key, HASH_FIND, NULL);
	if (c == NULL)
		return false;
	foreach(lc, c->schemas)
	{
		char	   *schema = lfirst(lc);

		if (schema == NULL || rv->schemaname == NULL ||
			strcmp(schema, rv->schemaname) == 0)
			return true;
	}
	return false;
}

/* TrekCheckSize(), once per relation of a check */
static void
size_of(TrekCheckState *cs, Oid relid, int64 *rows, int64 *bytes)
{
	MeasuredSize *size;
	bool		found;

	if (cs->sizes == NULL)
	{
		TrekCheckSize(relid, rows, bytes);
		return;
	}
	size = hash_search(cs->sizes, &relid, HASH_ENTER, &found);
	if (!found)
		TrekCheckSize(relid, &size->rows, &size->bytes);
	*rows = size->rows;
	*bytes = size->bytes;
}

static Target *
add_target(List **targets, RangeVar *rv, Oid relid, LOCKMODE lock)
{
	Target	   *t = palloc0(sizeof(Target));

	t->rv = rv;
	t->relid = relid;
	t->lock = lock;
	*targets = lappend(*targets, t);
	return t;
}

/* a relation an earlier statement of the plan renamed: its new name */
typedef struct Renamed
{
	char	   *schema;
	char	   *name;
	Oid			relid;
} Renamed;

/* the statement being looked at is of this plan (TrekCheckStatement) */
static TrekCheckState *current = NULL;

/*
 * The relation rv names now, or InvalidOid; no lock is taken.  A name an
 * earlier statement of the plan gave an existing relation (RENAME) is that
 * relation.
 */
static Oid
lookup(RangeVar *rv)
{
	ListCell   *lc;

	if (rv == NULL || rv->relname == NULL)
		return InvalidOid;
	if (current != NULL)
		foreach(lc, current->renamed)
	{
		Renamed    *r = lfirst(lc);

		if (strcmp(r->name, rv->relname) == 0 &&
			(r->schema == NULL || rv->schemaname == NULL ||
			 strcmp(r->schema, rv->schemaname) == 0))
			return r->relid;
	}
	return RangeVarGetRelid(rv, NoLock, true);
}

/*
 * In a PG_CATCH of an internal subtransaction begun in memory context cxt
 * under resource owner owner: the error, copied into cxt, with the
 * subtransaction rolled back and cxt and owner current again.
 */
ErrorData *
TrekCheckRollback(MemoryContext cxt, ResourceOwner owner)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

/*
 * fn(arg), or -1 ("cannot tell") when it fails: what the prediction looks
 * up may not exist yet, a type or function that an earlier statement of
 * the plan creates.  It runs in a subtransaction, so that a failure
 * leaves nothing behind; a cancel is not swallowed.
 */
static int
guarded(int (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int result = -1;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		result = fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata = TrekCheckRollback(cxt, owner);

		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		FreeErrorData(edata);
		result = -1;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return result;
}

const char *
TrekCheckBlocks(LOCKMODE mode)
{
	if (mode >= AccessExclusiveLock)
		return "reads and writes";
	if (mode >= ShareLock)
		return "writes";
	return "none";
}

/* ---- what ALTER TABLE does ---- */

/* the attribute of relid named colname, or NULL (release it) */
static HeapTuple
column_of(Oid relid, const char *colname)
{
	if (!OidIsValid(relid) || colname == NULL)
		return NULL;
	return SearchSysCacheAttName(relid, colname);
}

/*
 * Has relid a validated CHECK constraint saying that attnum IS NOT NULL
 * (alone, or as one part of an AND)?  Then SET NOT NULL need not scan.
 * With attnum InvalidAttrNumber: has it any validated CHECK constraint?
 */
static bool
validated_check(Oid relid, AttrNumber attnum)
{
	HeapTuple	tup;
	bool		found = false;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;

	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		Datum		bin;
		bool		isnull;
		Node	   *expr;
		List	   *parts;
		ListCell   *lc;

		if (con->contype != CONSTRAINT_CHECK || !con->convalidated)
			continue;
		if (attnum == InvalidAttrNumber)
		{
			found = true;
			break;
		}
		bin = heap_getattr(tup, Anum_pg_constraint_conbin,
						   RelationGetDescr(rel), &isnull);
		if (isnull)
			continue;
		expr = stringToNode(TextDatumGetCString(bin));
		parts = is_andclause(expr) ? ((BoolExpr *) expr)->args :
			list_make1(expr);
		foreach(lc, parts)
		{
			NullTest   *nt = (NullTest *) lfirst(lc);

			if (IsA(nt, NullTest) && nt->nulltesttype == IS_NOT_NULL &&
				!nt->argisrow && IsA(nt->arg, Var) &&
				((Var *) nt->arg)->varattno == attnum)
				found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* does SET NOT NULL of colname in relid scan the table? */
static int
set_not_null_scans(Oid relid, const char *colname)
{
	HeapTuple	att = column_of(relid, colname);
	int			scans = 1;

	if (att == NULL)
		return OidIsValid(relid) ? 1 : -1;
	if (((Form_pg_attribute) GETSTRUCT(att))->attnotnull)
		scans = 0;
	else if (validated_check(relid, ((Form_pg_attribute) GETSTRUCT(att))->attnum))
		scans = 0;
	ReleaseSysCache(att);
	return scans;
}

/*
 * Does changing column colname of relid to the type of def rewrite the
 * table?  The server rewrites unless the old values are the new ones as
 * they are: a binary-coercible cast, perhaps with a length coercion that
 * the cast's support function finds is a no-op (varchar(10) to varchar(20),
 * numeric(10,2) to numeric(12,2)), or timestamp to timestamptz when the
 * session's time zone is UTC.  An expression (USING) other than the column
 * itself is taken to rewrite.
 */
/* a column's ALTER ... TYPE of relid, for a guarded() look */
typedef struct ColumnChange
{
	Oid			relid;
	AlterTableCmd *cmd;
} ColumnChange;

static int
type_change_rewrites_of(void *arg)
{
	Oid			relid = ((ColumnChange *) arg)->relid;
	AlterTableCmd *cmd = ((ColumnChange *) arg)->cmd;
	ColumnDef  *def = (ColumnDef *) cmd->def;
	HeapTuple	att = column_of(relid, cmd->name);
	Form_pg_attribute a;
	Oid			newtype;
	int32		newtypmod;
	Node	   *expr;

	if (att == NULL)
		return 1;
	a = (Form_pg_attribute) GETSTRUCT(att);
	if (def->raw_default != NULL &&
		!(IsA(def->raw_default, ColumnRef) &&
		  list_length(((ColumnRef *) def->raw_default)->fields) == 1 &&
		  IsA(linitial(((ColumnRef *) def->raw_default)->fields), String) &&
		  strcmp(strVal(linitial(((ColumnRef *) def->raw_default)->fields)),
				 cmd->name) == 0))
	{
		ReleaseSysCache(att);
		return 1;
	}
	typenameTypeIdAndMod(NULL, def->typeName, &newtype, &newtypmod);
	expr = (Node *) makeVar(1, a->attnum, a->atttypid, a->atttypmod,
							a->attcollation, 0);
	ReleaseSysCache(att);
	expr = coerce_to_target_type(NULL, expr, exprType(expr), newtype,
								 newtypmod, COERCION_ASSIGNMENT,
								 COERCE_IMPLICIT_CAST, -1);
	if (expr == NULL)
		return 1;				/* no cast: the statement fails */
	expr = (Node *) expression_planner((Expr *) expr);
	for (;;)
	{
		if (IsA(expr, Var))
			return 0;
		else if (IsA(expr, RelabelType))
			expr = (Node *) ((RelabelType *) expr)->arg;
		else if (IsA(expr, CoerceToDomain))
		{
			if (DomainHasConstraints(((CoerceToDomain *) expr)->resulttype))
				return 1;
			expr = (Node *) ((CoerceToDomain *) expr)->arg;
		}
		else if (IsA(expr, FuncExpr) &&
				 (((FuncExpr *) expr)->funcid == F_TIMESTAMPTZ_TIMESTAMP ||
				  ((FuncExpr *) expr)->funcid == F_TIMESTAMP_TIMESTAMPTZ) &&
				 !TimestampTimestampTzRequiresRewrite())
			expr = linitial(((FuncExpr *) expr)->args);
		else
			return 1;
	}
}

/* a type change, where trek can tell: 1 rewrites, 0 does not, -1 unknown */
static int
type_change_rewrites(Oid relid, AlterTableCmd *cmd)
{
	ColumnChange tc = {relid, cmd};

	if (!OidIsValid(relid))
		return -1;
	return guarded(type_change_rewrites_of, &tc);
}

/*
 * Is raw expression e volatile once transformed and simplified as the
 * server does with a column default (a volatile-declared SQL function
 * that is inlined into stable parts is not)?
 */
static int
volatile_default_of(void *e)
{
	ParseState *pstate = make_parsestate(NULL);
	Node	   *expr = transformExpr(pstate, copyObject((Node *) e),
									 EXPR_KIND_COLUMN_DEFAULT);

	free_parsestate(pstate);
	expr = (Node *) expression_planner((Expr *) expr);
	return contain_volatile_functions(expr) ? 1 : 0;
}

static int
volatile_default(Node *e)
{
	return guarded(volatile_default_of, e);
}

/* is type name a domain with constraints? */
static int
constrained_domain_of(void *arg)
{
	Oid			typid;
	int32		typmod;

	typenameTypeIdAndMod(NULL, (TypeName *) arg, &typid, &typmod);
	return get_typtype(typid) == TYPTYPE_DOMAIN && DomainHasConstraints(typid);
}

static bool
is_serial(TypeName *tn)
{
	const char *name;

	if (tn == NULL || list_length(tn->names) != 1 || tn->arrayBounds != NIL)
		return false;
	name = strVal(linitial(tn->names));
	return strcmp(name, "serial") == 0 || strcmp(name, "bigserial") == 0 ||
		strcmp(name, "smallserial") == 0 || strcmp(name, "serial2") == 0 ||
		strcmp(name, "serial4") == 0 || strcmp(name, "serial8") == 0;
}

/* a foreign key of the statement: its referenced table, and a scan */
static void
foreign_key(List **targets, Constraint *c, Target *t)
{
	Target	   *ref = add_target(targets, c->pktable, InvalidOid,
								 ShareRowExclusiveLock);

	if (!c->skip_validation)
	{
		/* the referencing table is read whole; the referenced one probed */
		t->scans = 1;
		ref->scans = -1;
		t->advice = ADVICE_CONSTRAINT;
	}
}

/* what ADD COLUMN def does to the table of t */
static void
add_column(List **targets, ColumnDef *def, Target *t)
{
	ListCell   *lc;
	Node	   *dflt = def->raw_default;
	bool		not_null = false;
	List	   *refs = NIL;

	if (is_serial(def->typeName))
		t->rewrites = 1;
	foreach(lc, def->constraints)
	{
		Constraint *c = lfirst_node(Constraint, lc);

		switch (c->contype)
		{
			case CONSTR_DEFAULT:
				dflt = c->raw_expr;
				break;
			case CONSTR_IDENTITY:
				t->rewrites = 1;
				break;
			case CONSTR_GENERATED:
				if (TrekConstraintStored(c))
					t->rewrites = 1;
				break;
			case CONSTR_NOTNULL:
				not_null = true;
				break;
			case CONSTR_CHECK:
				if (!c->skip_validation)
					t->scans = 1;
				break;
			case CONSTR_PRIMARY:
			case CONSTR_UNIQUE:
				t->scans = 1;
				t->index_build = true;
				break;
			case CONSTR_FOREIGN:
				refs = lappend(refs, add_target(targets, c->pktable,
												InvalidOid,
												ShareRowExclusiveLock));
				break;
			default:
				break;
		}
	}
	/* a new column without a default is NULL: no key to validate */
	if (refs != NIL && dflt != NULL)
	{
		ListCell   *lc2;

		t->scans = 1;
		foreach(lc2, refs)
			((Target *) lfirst(lc2))->scans = -1;
	}
	if (dflt != NULL)
		t->rewrites = Max(t->rewrites, volatile_default(dflt));
	if (def->typeName != NULL && !is_serial(def->typeName) &&
		guarded(constrained_domain_of, def->typeName) == 1)
		t->rewrites = 1;
	if (not_null && dflt == NULL && t->rewrites != 1)
		t->scans = 1;
	if (t->rewrites == 1)
	{
		t->scans = 1;
		t->advice = ADVICE_DEFAULT;
	}
}

/* has an earlier statement of the plan dropped constraint conid? */
static bool
dropped_key(Oid conid)
{
	return current != NULL && list_member_oid(current->dropped_keys, conid);
}

/* note that the statement drops constraint conid */
static void
note_dropped_key(Oid conid)
{
	MemoryContext oldcxt;

	if (current == NULL)
		return;
	oldcxt = MemoryContextSwitchTo(current->cxt);
	current->dropped_keys = lappend_oid(current->dropped_keys, conid);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The tables foreign keys of relid on column colname (every column: NULL)
 * reference, but the keys an earlier statement of the plan dropped: dropping or changing the key drops its triggers there too.
 */
static void
fk_columns(List **targets, Oid relid, const char *colname, LOCKMODE lock)
{
	AttrNumber	attnum = InvalidAttrNumber;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (!OidIsValid(relid))
		return;
	if (colname != NULL && (attnum = get_attnum(relid, colname)) == InvalidAttrNumber)
		return;
	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		bool		isnull;
		Datum		keys;
		Datum	   *cols;
		int			ncols;
		bool		on_column = colname == NULL;

		if (con->contype != CONSTRAINT_FOREIGN || con->confrelid == relid ||
			dropped_key(con->oid))
			continue;
		keys = heap_getattr(tup, Anum_pg_constraint_conkey,
							RelationGetDescr(rel), &isnull);
		if (!on_column && !isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(keys), INT2OID, 2, true,
							  TYPALIGN_SHORT, &cols, NULL, &ncols);
			for (int k = 0; k < ncols; k++)
				on_column |= DatumGetInt16(cols[k]) == attnum;
		}
		if (on_column)
			add_target(targets, NULL, con->confrelid, lock);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

static Oid
rel_am(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			am = InvalidOid;

	if (HeapTupleIsValid(tup))
	{
		am = ((Form_pg_class) GETSTRUCT(tup))->relam;
		ReleaseSysCache(tup);
	}
	return am;
}

/*
 * Does a type change that keeps the table rebuild an index of it?  The
 * server keeps an index whose column keeps its operator class, and builds
 * again one with expressions or a predicate on the column, or whose column
 * gets another default operator class (timestamp to timestamptz).
 */
static int
index_rebuilt_of(void *arg)
{
	Oid			relid = ((ColumnChange *) arg)->relid;
	AlterTableCmd *cmd = ((ColumnChange *) arg)->cmd;
	AttrNumber	attnum = get_attnum(relid, cmd->name);
	Oid			newtype;
	int32		newtypmod;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		rebuilt = false;

	if (attnum == InvalidAttrNumber)
		return -1;
	typenameTypeIdAndMod(NULL, ((ColumnDef *) cmd->def)->typeName, &newtype,
						 &newtypmod);
	rel = table_open(IndexRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, IndexIndrelidIndexId, true, NULL, 1, &key);
	while (!rebuilt && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_index idx = (Form_pg_index) GETSTRUCT(tup);
		bool		isnull;
		Datum		d;
		oidvector  *classes;

		for (int k = 0; k < 2; k++)
		{
			Bitmapset  *attrs = NULL;

			d = heap_getattr(tup, k == 0 ? Anum_pg_index_indexprs :
							 Anum_pg_index_indpred, RelationGetDescr(rel),
							 &isnull);
			if (isnull)
				continue;
			pull_varattnos(stringToNode(TextDatumGetCString(d)), 1, &attrs);
			if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, attrs))
				rebuilt = true;
		}
		d = heap_getattr(tup, Anum_pg_index_indclass, RelationGetDescr(rel),
						 &isnull);
		classes = (oidvector *) DatumGetPointer(d);
		for (int k = 0; !isnull && k < idx->indnkeyatts; k++)
			if (idx->indkey.values[k] == attnum &&
				GetDefaultOpClass(newtype, rel_am(idx->indexrelid)) !=
				classes->values[k])
				rebuilt = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return rebuilt ? 1 : 0;
}

static bool
index_rebuilt(Oid relid, AlterTableCmd *cmd)
{
	ColumnChange r = {relid, cmd};

	return OidIsValid(relid) && guarded(index_rebuilt_of, &r) == 1;
}

/*
 * The table foreign key conname of relid references, or InvalidOid (also
 * when an earlier statement of the plan dropped it); drops: this statement
 * drops it.
 */
static Oid
referenced_by(Oid relid, const char *conname, bool drops)
{
	Oid			conid = OidIsValid(relid) ?
	get_relation_constraint_oid(relid, conname, true) : InvalidOid;
	HeapTuple	tup = OidIsValid(conid) && !dropped_key(conid) ?
	SearchSysCache1(CONSTROID, ObjectIdGetDatum(conid)) : NULL;
	Oid			referenced = InvalidOid;

	if (drops && OidIsValid(conid))
		note_dropped_key(conid);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);

		if (con->contype == CONSTRAINT_FOREIGN)
			referenced = con->confrelid;
		ReleaseSysCache(tup);
	}
	return referenced;
}

/* the access method named amname (NULL: default_table_access_method) */
static Oid
access_method(const char *amname)
{
	return get_table_am_oid(amname != NULL ? amname : default_table_access_method,
							true);
}

/* what subcommand cmd of an ALTER TABLE does to the table of t */
static void
alter_cmd(List **targets, AlterTableCmd *cmd, Target *t, Oid relid)
{
	HeapTuple	tup;

	switch (cmd->subtype)
	{
		case AT_AddColumn:
			add_column(targets, (ColumnDef *) cmd->def, t);
			break;
		case AT_SetNotNull:
			{
				int			scans = set_not_null_scans(relid, cmd->name);

				if (scans != 0)
				{
					t->scans = Max(t->scans, scans);
					t->advice = ADVICE_NOT_NULL;
				}
				break;
			}
#ifdef TREK_HAVE_SET_EXPRESSION
		case AT_SetExpression:
			t->rewrites = 1;
			t->scans = 1;
			t->advice = ADVICE_REWRITE;
			break;
#endif
		case AT_AlterColumnType:
			{
				int			rewrites = type_change_rewrites(relid, cmd);

				if (rewrites == 1)
				{
					t->rewrites = 1;
					t->scans = 1;
					t->advice = ADVICE_TYPE;
				}
				else if (rewrites < 0)
				{
					t->rewrites = Max(t->rewrites, -1) == 1 ? 1 : -1;
					t->scans = t->scans == 1 ? 1 : -1;
				}
				else if (index_rebuilt(relid, cmd))
				{
					t->scans = 1;
					t->index_build = true;
					t->advice = ADVICE_TYPE;
				}
				fk_columns(targets, relid, cmd->name, AccessExclusiveLock);
				break;
			}
		case AT_DropColumn:
			fk_columns(targets, relid, cmd->name, AccessExclusiveLock);
			break;
		case AT_DropConstraint:
			{
				Oid			referenced = referenced_by(relid, cmd->name, true);

				/* its triggers on the referenced table go too */
				if (OidIsValid(referenced))
					add_target(targets, NULL, referenced, AccessExclusiveLock);
				break;
			}
		case AT_AddConstraint:
			{
				Constraint *c = (Constraint *) cmd->def;

				if (!IsA(c, Constraint))
					break;
				switch (c->contype)
				{
					case CONSTR_CHECK:
						if (!c->skip_validation)
						{
							t->scans = 1;
							t->advice = ADVICE_CONSTRAINT;
						}
						break;
#ifdef TREK_HAVE_NOT_NULL_CONSTRAINT
					case CONSTR_NOTNULL:
						if (!c->skip_validation)
						{
							t->scans = 1;
							t->advice = ADVICE_NOT_NULL;
						}
						break;
#endif
					case CONSTR_FOREIGN:
						foreign_key(targets, c, t);
						break;
					case CONSTR_PRIMARY:
					case CONSTR_UNIQUE:
						if (c->indexname == NULL)
						{
							t->scans = 1;
							t->index_build = true;
							t->advice = ADVICE_KEY;
						}
						break;
					case CONSTR_EXCLUSION:
						t->scans = 1;
						t->index_build = true;
						t->advice = ADVICE_REWRITE;
						break;
					default:
						break;
				}
				break;
			}
		case AT_ValidateConstraint:
			{
				Oid			referenced = referenced_by(relid, cmd->name, false);

				t->scans = 1;
				/* the check reads the referenced rows FOR KEY SHARE */
				if (OidIsValid(referenced))
					add_target(targets, NULL, referenced, RowShareLock)->scans = -1;
				break;
			}
		case AT_AddInherit:
			add_target(targets, (RangeVar *) cmd->def, InvalidOid,
					   ShareUpdateExclusiveLock);
			break;
		case AT_SetLogged:
		case AT_SetUnLogged:
			tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
			if (!HeapTupleIsValid(tup))
				t->rewrites = 1;
			else
			{
				char		p = ((Form_pg_class) GETSTRUCT(tup))->relpersistence;

				if ((cmd->subtype == AT_SetLogged) != (p == RELPERSISTENCE_PERMANENT))
					t->rewrites = 1;
				ReleaseSysCache(tup);
			}
			if (t->rewrites == 1)
			{
				t->scans = 1;
				t->advice = ADVICE_REWRITE;
			}
			break;
		case AT_SetAccessMethod:
			tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
			if (!HeapTupleIsValid(tup) ||
				((Form_pg_class) GETSTRUCT(tup))->relam != access_method(cmd->name))
			{
				t->rewrites = 1;
				t->scans = 1;
				t->advice = ADVICE_REWRITE;
			}
			if (HeapTupleIsValid(tup))
				ReleaseSysCache(tup);
			break;
		case AT_SetTableSpace:
			{
				Oid			space = get_tablespace_oid(cmd->name, true);

				tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
				if (space == MyDatabaseTableSpace)
					space = InvalidOid;
				if (!HeapTupleIsValid(tup) ||
					((Form_pg_class) GETSTRUCT(tup))->reltablespace != space)
				{
					t->rewrites = 1;
					t->advice = ADVICE_REWRITE;
				}
				if (HeapTupleIsValid(tup))
					ReleaseSysCache(tup);
				break;
			}
		case AT_AttachPartition:
			{
				PartitionCmd *pc = (PartitionCmd *) cmd->def;
				Target	   *part = add_target(targets, pc->name, InvalidOid,
											  AccessExclusiveLock);
				Oid			partid = lookup(pc->name);

				/*
				 * a validated CHECK of the partition is taken to imply its
				 * bounds
				 */
				part->scans = OidIsValid(partid) &&
					validated_check(partid, InvalidAttrNumber) ? 0 : 1;
				part->advice = ADVICE_ATTACH;
				break;
			}
		case AT_DetachPartition:
			{
				PartitionCmd *pc = (PartitionCmd *) cmd->def;

				add_target(targets, pc->name, InvalidOid,
						   pc->concurrent ? ShareUpdateExclusiveLock :
						   AccessExclusiveLock);
				break;
			}
		default:
			break;
	}
}

static void
alter_table(List **targets, AlterTableStmt *stmt)
{
	LOCKMODE	lock = AlterTableGetLockLevel(stmt->cmds);
	Oid			relid = lookup(stmt->relation);
	Target	   *t = add_target(targets, stmt->relation, relid, lock);
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		alter_cmd(targets, cmd, t, relid);
	}
}

/* ---- other statements ---- */

static bool
has_indexes(Oid relid)
{
	HeapTuple	tup = OidIsValid(relid) ?
	SearchSysCache1(RELOID, ObjectIdGetDatum(relid)) : NULL;
	bool		has = false;

	if (HeapTupleIsValid(tup))
	{
		has = ((Form_pg_class) GETSTRUCT(tup))->relhasindex;
		ReleaseSysCache(tup);
	}
	return has;
}

/* does a function named in the statement run code trek cannot see into? */
static bool
calls_user_code(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncCall))
	{
		List	   *names = ((FuncCall *) node)->funcname;
		char	   *schema;
		char	   *name;
		CatCList   *list;
		bool		user = false;

		DeconstructQualifiedName(names, &schema, &name);
		if (schema != NULL)
			return strcmp(schema, "pg_catalog") != 0;
		list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(name));
		for (int i = 0; i < list->n_members; i++)
		{
			Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(&list->members[i]->tuple);

			if (proc->pronamespace != PG_CATALOG_NAMESPACE)
				user = true;
		}
		if (list->n_members == 0)
			user = true;
		ReleaseSysCacheList(list);
		if (user)
			return true;
	}
	return raw_expression_tree_walker(node, calls_user_code, context);
}

/* the relations a query reads: AccessShareLock */
static bool
collect_reads(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SelectStmt) && ((SelectStmt *) node)->whereClause == NULL &&
		list_length(((SelectStmt *) node)->fromClause) == 1 &&
		IsA(linitial(((SelectStmt *) node)->fromClause), RangeVar))
	{
		/* SELECT ... FROM one table, without WHERE: read whole */
		add_target((List **) context,
				   linitial(((SelectStmt *) node)->fromClause), InvalidOid,
				   AccessShareLock)->scans = 1;
		return false;
	}
	if (IsA(node, RangeVar))
	{
		add_target((List **) context, (RangeVar *) node, InvalidOid,
				   AccessShareLock)->scans = -1;
		return false;
	}
	return raw_expression_tree_walker(node, collect_reads, context);
}

static bool
concurrently(List *params)
{
	ListCell   *lc;

	foreach(lc, params)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "concurrently") == 0)
			return defGetBoolean(opt);
	}
	return false;
}

static bool
vacuum_full(VacuumStmt *stmt)
{
	ListCell   *lc;

	if (!stmt->is_vacuumcmd)
		return false;
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "full") == 0)
			return defGetBoolean(opt);
	}
	return false;
}

/* the relations a DROP names */
static void
drop_targets(List **targets, DropStmt *stmt)
{
	ListCell   *lc;

	switch (stmt->removeType)
	{
		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_FOREIGN_TABLE:
		case OBJECT_SEQUENCE:
		case OBJECT_INDEX:
			break;
		case OBJECT_TRIGGER:
		case OBJECT_RULE:
		case OBJECT_POLICY:
			/* the table's name, then the object's */
			foreach(lc, stmt->objects)
			{
				List	   *names = (List *) lfirst(lc);

				if (list_length(names) >= 2)
					add_target(targets,
							   makeRangeVarFromNameList(list_copy_head(names,
																	   list_length(names) - 1)),
							   InvalidOid, AccessExclusiveLock);
			}
			return;
		default:
			return;
	}
	foreach(lc, stmt->objects)
	{
		RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
		LOCKMODE	lock = stmt->concurrent ? ShareUpdateExclusiveLock :
		AccessExclusiveLock;
		Oid			relid = lookup(rv);

		add_target(targets, rv, InvalidOid, lock);
		if (stmt->removeType == OBJECT_TABLE)
			fk_columns(targets, relid, NULL, AccessExclusiveLock);
		if (stmt->removeType == OBJECT_INDEX && OidIsValid(relid))
		{
			Oid			heap = IndexGetRelation(relid, true);

			if (OidIsValid(heap))
				add_target(targets, NULL, heap, lock);
		}
	}
}

/*
 * The relations statement stmt affects, with what it does to each (Target
 * list), noting the relations it creates in cs.  Sets *opaque for code trek
 * cannot see into.
 */
static List *
targets_of(TrekCheckState *cs, Node *stmt, bool *opaque)
{
	List	   *targets = NIL;
	Target	   *t;
	ListCell   *lc;

	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
			alter_table(&targets, (AlterTableStmt *) stmt);
			break;
		case T_IndexStmt:
			{
				IndexStmt  *s = (IndexStmt *) stmt;

				Oid			relid = lookup(s->relation);

				t = add_target(&targets, s->relation, relid,
							   s->concurrent ? ShareUpdateExclusiveLock : ShareLock);
				/* IF NOT EXISTS of an index that exists builds nothing */
				if (s->if_not_exists && s->idxname != NULL && OidIsValid(relid) &&
					OidIsValid(get_relname_relid(s->idxname,
												 get_rel_namespace(relid))))
					break;
				t->scans = 1;
				t->index_build = true;
				t->advice = ADVICE_INDEX;
				break;
			}
		case T_ReindexStmt:
			{
				ReindexStmt *s = (ReindexStmt *) stmt;
				bool		conc = concurrently(s->params);

				if (s->kind == REINDEX_OBJECT_TABLE)
				{
					t = add_target(&targets, s->relation, InvalidOid,
								   conc ? ShareUpdateExclusiveLock : ShareLock);
					t->scans = 1;
					t->index_build = true;
					t->advice = ADVICE_REINDEX;
				}
				else if (s->kind == REINDEX_OBJECT_INDEX)
				{
					Oid			idx = lookup(s->relation);
					Oid			heap = OidIsValid(idx) ?
					IndexGetRelation(idx, true) : InvalidOid;

					t = add_target(&targets, s->relation, InvalidOid,
								   conc ? ShareUpdateExclusiveLock : AccessExclusiveLock);
					t->rewrites = 1;
					t->advice = ADVICE_REINDEX;
					if (OidIsValid(heap))
					{
						t = add_target(&targets, NULL, heap,
									   conc ? ShareUpdateExclusiveLock : ShareLock);
						t->scans = 1;
						t->index_build = true;
						t->advice = ADVICE_REINDEX;
					}
				}
				break;
			}
		case T_DropStmt:
			drop_targets(&targets, (DropStmt *) stmt);
			break;
		case T_RenameStmt:
			{
				RenameStmt *s = (RenameStmt *) stmt;

				if (s->relation != NULL)
					add_target(&targets, s->relation, InvalidOid,
							   s->renameType == OBJECT_INDEX ?
							   ShareUpdateExclusiveLock : AccessExclusiveLock);
				break;
			}
		case T_AlterObjectSchemaStmt:
			if (((AlterObjectSchemaStmt *) stmt)->relation != NULL)
				add_target(&targets, ((AlterObjectSchemaStmt *) stmt)->relation,
						   InvalidOid, AccessExclusiveLock);
			break;
		case T_CommentStmt:
			{
				CommentStmt *s = (CommentStmt *) stmt;

				if (s->objtype == OBJECT_TABLE || s->objtype == OBJECT_VIEW ||
					s->objtype == OBJECT_MATVIEW || s->objtype == OBJECT_INDEX ||
					s->objtype == OBJECT_SEQUENCE ||
					s->objtype == OBJECT_FOREIGN_TABLE)
					add_target(&targets, makeRangeVarFromNameList(castNode(List, s->object)),
							   InvalidOid, ShareUpdateExclusiveLock);
				else if (s->objtype == OBJECT_COLUMN &&
						 list_length(castNode(List, s->object)) >= 2)
				{
					List	   *names = castNode(List, s->object);

					add_target(&targets,
							   makeRangeVarFromNameList(list_copy_head(names,
																	   list_length(names) - 1)),
							   InvalidOid, ShareUpdateExclusiveLock);
				}
				break;
			}
		case T_CreatePolicyStmt:
			add_target(&targets, ((CreatePolicyStmt *) stmt)->table, InvalidOid,
					   AccessExclusiveLock);
			break;
		case T_CreateTrigStmt:
			add_target(&targets, ((CreateTrigStmt *) stmt)->relation,
					   InvalidOid, ShareRowExclusiveLock);
			break;
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) stmt)->relations)
			{
				Oid			relid = lookup(lfirst_node(RangeVar, lc));

				t = add_target(&targets, lfirst_node(RangeVar, lc), InvalidOid,
							   AccessExclusiveLock);
				/* a new, empty file, whose indexes are built again */
				t->rewrites = 1;
				t->empties = true;
				t->scans = has_indexes(relid) ? 1 : 0;
			}
			break;
		case T_ClusterStmt:
			if (((ClusterStmt *) stmt)->relation != NULL)
			{
				t = add_target(&targets, ((ClusterStmt *) stmt)->relation,
							   InvalidOid, AccessExclusiveLock);
				t->rewrites = 1;
				t->scans = 1;
				t->advice = ADVICE_REWRITE;
			}
			break;
		case T_VacuumStmt:
			{
				VacuumStmt *s = (VacuumStmt *) stmt;
				bool		full = vacuum_full(s);

				foreach(lc, s->rels)
				{
					VacuumRelation *vr = lfirst_node(VacuumRelation, lc);

					t = add_target(&targets, vr->relation, vr->oid,
								   full ? AccessExclusiveLock : ShareUpdateExclusiveLock);
					if (full)
					{
						t->rewrites = 1;
						t->scans = 1;
						t->advice = ADVICE_REWRITE;
					}
				}
				break;
			}
		case T_RefreshMatViewStmt:
			{
				RefreshMatViewStmt *s = (RefreshMatViewStmt *) stmt;

				t = add_target(&targets, s->relation, InvalidOid,
							   s->concurrent ? ExclusiveLock : AccessExclusiveLock);
				/* concurrently, the view is read to be compared */
				t->scans = s->concurrent ? 1 : 0;
				if (!s->concurrent)
				{
					t->rewrites = 1;
					t->advice = ADVICE_REFRESH;
				}
				break;
			}
		case T_LockStmt:
			foreach(lc, ((LockStmt *) stmt)->relations)
				add_target(&targets, lfirst_node(RangeVar, lc), InvalidOid,
						   ((LockStmt *) stmt)->mode);
			break;
		case T_InsertStmt:
			{
				InsertStmt *s = (InsertStmt *) stmt;

				add_target(&targets, s->relation, InvalidOid, RowExclusiveLock);
				(void) collect_reads(s->selectStmt, &targets);
				*opaque = calls_user_code(stmt, NULL);
				break;
			}
		case T_UpdateStmt:
		case T_DeleteStmt:
			{
				RangeVar   *rv;
				Node	   *where;

				if (IsA(stmt, UpdateStmt))
				{
					rv = ((UpdateStmt *) stmt)->relation;
					where = ((UpdateStmt *) stmt)->whereClause;
				}
				else
				{
					rv = ((DeleteStmt *) stmt)->relation;
					where = ((DeleteStmt *) stmt)->whereClause;
				}
				t = add_target(&targets, rv, InvalidOid, RowExclusiveLock);
				if (where == NULL)
				{
					t->scans = 1;
					t->every_row = true;
					t->advice = ADVICE_ALL_ROWS;
				}
				else
					t->scans = -1;
				*opaque = calls_user_code(stmt, NULL);
				break;
			}
		case T_MergeStmt:
			/* whether it reads the whole target, its plan decides */
			add_target(&targets, ((MergeStmt *) stmt)->relation, InvalidOid,
					   RowExclusiveLock)->scans = -1;
			*opaque = calls_user_code(stmt, NULL);
			break;
		case T_CreateStmt:
			{
				CreateStmt *s = (CreateStmt *) stmt;

				foreach(lc, s->inhRelations)
					add_target(&targets, lfirst_node(RangeVar, lc), InvalidOid,
							   s->partbound != NULL ? AccessExclusiveLock :
							   ShareUpdateExclusiveLock);
				foreach(lc, s->tableElts)
				{
					Node	   *elt = lfirst(lc);
					ListCell   *lc2;

					if (IsA(elt, ColumnDef))
					{
						foreach(lc2, ((ColumnDef *) elt)->constraints)
						{
							Constraint *c = lfirst_node(Constraint, lc2);

							if (c->contype == CONSTR_FOREIGN)
								add_target(&targets, c->pktable, InvalidOid,
										   ShareRowExclusiveLock);
						}
					}
					else if (IsA(elt, Constraint) &&
							 ((Constraint *) elt)->contype == CONSTR_FOREIGN)
						add_target(&targets, ((Constraint *) elt)->pktable,
								   InvalidOid, ShareRowExclusiveLock);
				}
				if (!s->if_not_exists || !OidIsValid(lookup(s->relation)))
					note_created(cs, s->relation);
				break;
			}
		case T_CreateTableAsStmt:
			{
				CreateTableAsStmt *s = (CreateTableAsStmt *) stmt;

				if (!s->if_not_exists || !OidIsValid(lookup(s->into->rel)))
					note_created(cs, s->into->rel);
				*opaque = calls_user_code(s->query, NULL);
				break;
			}
		case T_ViewStmt:
			note_created(cs, ((ViewStmt *) stmt)->view);
			break;
		case T_CreateSeqStmt:
			note_created(cs, ((CreateSeqStmt *) stmt)->sequence);
			break;
		case T_DoStmt:
		case T_CallStmt:
		case T_ExecuteStmt:
			*opaque = true;
			break;
		case T_SelectStmt:
			*opaque = calls_user_code(stmt, NULL);
			break;
		default:
			break;
	}
	return targets;
}

/* ---- sizes, hazards and rows ---- */

/* the bytes of rel's main fork, as the buffer manager counts its blocks */
static int64
main_fork_bytes(Relation rel)
{
	if (rel == NULL || !RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		return 0;
	return (int64) RelationGetNumberOfBlocks(rel) * BLCKSZ;
}

/* rel's main fork and those of its indexes */
static int64
with_indexes_bytes(Relation rel)
{
	int64		bytes = main_fork_bytes(rel);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	index = RelationIdGetRelation(lfirst_oid(lc));

		if (index != NULL)
		{
			bytes += main_fork_bytes(index);
			RelationClose(index);
		}
	}
	list_free(indexes);
	return bytes;
}

/*
 * The rows (reltuples; -1: never counted) and bytes of relid now: for a
 * partitioned table, of its partitions.  The bytes are those of the main
 * forks of the table, its indexes and its TOAST table and index (what
 * pg_total_relation_size() counts but the free space and visibility maps),
 * taken from the files the server keeps open, when the relation's
 * AccessShareLock is free at once; else the pages pg_class counted.
 */
void
TrekCheckSize(Oid relid, int64 *rows, int64 *bytes)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;
	char		relkind;

	*rows = -1;
	*bytes = -1;
	if (!HeapTupleIsValid(tup))
		return;
	form = (Form_pg_class) GETSTRUCT(tup);
	relkind = form->relkind;
	if (relkind == RELKIND_PARTITIONED_TABLE)
	{
		List	   *parts = find_all_inheritors(relid, NoLock, NULL);
		ListCell   *lc;

		ReleaseSysCache(tup);
		*bytes = 0;
		foreach(lc, parts)
		{
			int64		r;
			int64		b;

			if (lfirst_oid(lc) == relid)
				continue;
			TrekCheckSize(lfirst_oid(lc), &r, &b);
			if (r > 0)
				*rows = Max(*rows, 0) + r;
			if (b > 0)
				*bytes += b;
		}
		return;
	}
	if (form->reltuples >= 0)
		*rows = (int64) form->reltuples;
	*bytes = (int64) form->relpages * BLCKSZ;
	ReleaseSysCache(tup);
	if (!RELKIND_HAS_STORAGE(relkind))
		return;
	if (ConditionalLockRelationOid(relid, AccessShareLock))
	{
		Relation	rel = RelationIdGetRelation(relid);

		if (rel != NULL)
		{
			*bytes = with_indexes_bytes(rel);
			if (OidIsValid(rel->rd_rel->reltoastrelid))
			{
				Relation	toast = RelationIdGetRelation(rel->rd_rel->reltoastrelid);

				if (toast != NULL)
				{
					*bytes += with_indexes_bytes(toast);
					RelationClose(toast);
				}
			}
			RelationClose(rel);
		}
		UnlockRelationOid(relid, AccessShareLock);
	}
}

/*
 * The hazard of row (NULL: none): a statement that blocks reads or writes
 * of a table larger than trek.large_table for a time that grows with its
 * size.
 */
void
TrekCheckHazard(TrekCheckRow *row)
{
	int64		large = (int64) TrekLargeTable * 1024;

	row->hazard = NULL;
	if (!OidIsValid(row->relation) || row->bytes <= large)
		return;
	if (row->every_row)
		row->hazard = HAZARD_ALL_ROWS;
	else if (strcmp(TrekCheckBlocks(row->lock), "none") == 0)
		return;
	else if (row->rewrites == 1 && !row->empties)
		row->hazard = HAZARD_REWRITE;
	else if (row->index_build)
		row->hazard = HAZARD_INDEX;
	else if (row->scans == 1)
		row->hazard = HAZARD_SCAN;
}

/* the text of statement raw of info's text (len bytes) */
static char *
statement_text(TrekStepInfo *info, RawStmt *raw, int len)
{
	int			start = TrekSkipBlanks(info->text, raw->stmt_location, len);
	int			end = raw->stmt_len > 0 ? raw->stmt_location + raw->stmt_len : len;

	info->offset = start;
	return pnstrdup(info->text + start, Max(end - start, 0));
}

static TrekCheckRow *
new_row(TrekStepInfo *info, char *statement, int line)
{
	TrekCheckRow *row = palloc0(sizeof(TrekCheckRow));

	row->step = info->step;
	row->file = info->file;
	row->line = line;
	row->statement = statement;
	row->relation = InvalidOid;
	row->lock = NoLock;
	row->rewrites = 0;
	row->scans = 0;
	row->rows = -1;
	row->bytes = -1;
	return row;
}

/* a row for statement raw (of info's text, len bytes), without a relation */
TrekCheckRow *
TrekCheckStatementRow(TrekStepInfo *info, RawStmt *raw, int len)
{
	char	   *statement = statement_text(info, raw, len);

	return new_row(info, statement, TrekLineNumber(info->text, info->offset));
}

/*
 * What statement raw (of info's text, len bytes) does: a row per existing
 * relation it affects, or one row without a relation.
 */
List *
TrekCheckStatement(TrekCheckState *cs, TrekStepInfo *info, RawStmt *raw,
				   int len)
{
	char	   *statement = statement_text(info, raw, len);
	int			line = TrekLineNumber(info->text, info->offset);
	bool		opaque = false;
	List	   *targets;
	List	   *rows = NIL;
	ListCell   *lc;

	current = cs;
	targets = targets_of(cs, raw->stmt, &opaque);

	foreach(lc, targets)
	{
		Target	   *t = lfirst(lc);
		TrekCheckRow *row;
		Oid			relid = t->relid;
		ListCell   *lc2;
		bool		merged = false;

		/* a name the plan made anew is a new relation, whatever it was */
		if (t->rv != NULL && is_created(cs, t->rv))
			continue;
		if (!OidIsValid(relid))
			relid = lookup(t->rv);
		if (!OidIsValid(relid))
			continue;
		/* one row per relation: the strongest lock, any rewrite or scan */
		foreach(lc2, rows)
		{
			row = lfirst(lc2);
			if (row->relation != relid)
				continue;
			row->lock = Max(row->lock, t->lock);
			row->rewrites = Max(row->rewrites, t->rewrites);
			row->scans = row->scans == 1 || t->scans == 1 ? 1 :
				Min(row->scans, t->scans);
			row->every_row |= t->every_row;
			row->index_build |= t->index_build;
			row->empties |= t->empties;
			if (row->advice == NULL)
				row->advice = t->advice;
			merged = true;
		}
		if (merged)
			continue;
		row = new_row(info, statement, line);
		row->relation = relid;
		row->lock = t->lock;
		row->rewrites = t->rewrites;
		row->scans = t->scans;
		row->every_row = t->every_row;
		row->index_build = t->index_build;
		row->empties = t->empties;
		row->advice = t->advice;
		rows = lappend(rows, row);
	}
	foreach(lc, rows)
	{
		TrekCheckRow *row = lfirst(lc);

		size_of(cs, row->relation, &row->rows, &row->bytes);
		TrekCheckHazard(row);
		if (row->hazard == NULL)
			row->advice = NULL;
	}
	if (opaque || rows == NIL)
	{
		TrekCheckRow *row = new_row(info, statement, line);

		if (opaque)
		{
			row->hazard = HAZARD_OPAQUE;
			row->rewrites = -1;
			row->scans = -1;
			row->advice = "trek cannot see what this code does: look at it, or try the plan with trek_rehearse() on a copy of the database.";
		}
		rows = lappend(rows, row);
	}

	/* a relation renamed keeps its size and rows under its new name */
	if (IsA(raw->stmt, RenameStmt) &&
		((RenameStmt *) raw->stmt)->renameType != OBJECT_COLUMN &&
		((RenameStmt *) raw->stmt)->renameType != OBJECT_TABCONSTRAINT &&
		((RenameStmt *) raw->stmt)->renameType != OBJECT_TRIGGER &&
		((RenameStmt *) raw->stmt)->renameType != OBJECT_POLICY &&
		((RenameStmt *) raw->stmt)->relation != NULL)
	{
		RenameStmt *r = (RenameStmt *) raw->stmt;
		Oid			relid = lookup(r->relation);

		if (OidIsValid(relid))
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(cs->cxt);
			Renamed    *n = palloc(sizeof(Renamed));

			n->schema = r->relation->schemaname ? pstrdup(r->relation->schemaname) : NULL;
			n->name = pstrdup(r->newname);
			n->relid = relid;
			cs->renamed = lappend(cs->renamed, n);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	current = NULL;

	/* what it creates is new to the statements after it */
	if (IsA(raw->stmt, DropStmt))
	{
		DropStmt   *d = (DropStmt *) raw->stmt;

		if (d->removeType == OBJECT_TABLE || d->removeType == OBJECT_VIEW ||
			d->removeType == OBJECT_MATVIEW || d->removeType == OBJECT_SEQUENCE)
			foreach(lc, d->objects)
				note_created(cs, makeRangeVarFromNameList((List *) lfirst(lc)));
	}
	return rows;
}

/* ---- trek_check() ---- */

void
TrekCheckPutRow(FunctionCallInfo fcinfo, TrekCheckRow *row)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[13];
	bool		nulls[13];

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int32GetDatum(row->step);
	values[1] = CStringGetTextDatum(row->file);
	values[2] = Int32GetDatum(row->line);
	nulls[2] = row->line <= 0;
	if (row->statement != NULL)
		values[3] = CStringGetTextDatum(row->statement);
	nulls[3] = row->statement == NULL;
	values[4] = ObjectIdGetDatum(row->relation);
	nulls[4] = !OidIsValid(row->relation);
	if (row->lock != NoLock)
	{
		values[5] = CStringGetTextDatum(GetLockmodeName(DEFAULT_LOCKMETHOD,
														row->lock));
		values[6] = CStringGetTextDatum(row->every_row ? "writes" :
										TrekCheckBlocks(row->lock));
	}
	nulls[5] = nulls[6] = row->lock == NoLock;
	values[7] = BoolGetDatum(row->rewrites == 1);
	nulls[7] = row->rewrites < 0;
	values[8] = BoolGetDatum(row->scans == 1);
	nulls[8] = row->scans < 0;
	values[9] = Int64GetDatum(row->rows);
	nulls[9] = row->rows < 0;
	values[10] = Int64GetDatum(row->bytes);
	nulls[10] = row->bytes < 0;
	if (row->hazard != NULL)
		values[11] = CStringGetTextDatum(row->hazard);
	nulls[11] = row->hazard == NULL;
	if (row->advice != NULL)
		values[12] = CStringGetTextDatum(row->advice);
	nulls[12] = row->advice == NULL;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * The hazards step text (len bytes) accepts: its "-- trek:allow <hazard>"
 * lines among the comment lines it starts with.  An unknown hazard is an
 * error, so that a misspelt line does not accept nothing in silence.
 */
static List *
allowed_hazards(TrekStepInfo *info, const char *text, int len)
{
	List	   *allowed = NIL;
	int			pos = 0;

	while (pos < len)
	{
		int			eol = pos;
		int			p = pos;

		while (eol < len && text[eol] != '\n')
			eol++;
		while (p < eol && (text[p] == ' ' || text[p] == '\t' || text[p] == '\r'))
			p++;
		if (p < eol && !(eol - p >= 2 && text[p] == '-' && text[p + 1] == '-'))
			break;
		if (eol - p > 13 && strncmp(text + p, "-- trek:allow", 13) == 0 &&
			(text[p + 13] == ' ' || text[p + 13] == '\t'))
		{
			int			s = p + 13;
			int			e = eol;
			char	   *code;
			bool		known = false;

			while (s < e && (text[s] == ' ' || text[s] == '\t'))
				s++;
			while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\t' ||
							 text[e - 1] == '\r'))
				e--;
			code = pnstrdup(text + s, e - s);
			for (int k = 0; hazard_names[k] != NULL; k++)
				if (strcmp(code, hazard_names[k]) == 0)
					known = true;
			if (!known)
			{
				info->offset = p;
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown hazard \"%s\" in a \"-- trek:allow\" line of migration \"%s\"",
								code, info->file),
						 errhint("Name one hazard per line: \"rewrite\", \"scan\", \"index build\" or \"all rows\".")));
			}
			allowed = lappend(allowed, code);
		}
		pos = eol + 1;
	}
	return allowed;
}

static bool
is_allowed(List *allowed, const char *hazard)
{
	ListCell   *lc;

	foreach(lc, allowed)
		if (strcmp((char *) lfirst(lc), hazard) == 0)
		return true;
	return false;
}

/* a size for messages: "12 MB" */
static char *
size_text(int64 bytes)
{
	return text_to_cstring(DatumGetTextPP(DirectFunctionCall1(pg_size_pretty,
															  Int64GetDatum(bytes))));
}

/* the first line of a statement, cut to fit a message */
static char *
short_statement(const char *statement)
{
	int			n = 0;

	while (statement[n] != '\0' && statement[n] != '\n' && n < 100)
		n += pg_mblen(statement + n);
	if (statement[n] == '\0')
		return pstrdup(statement);
	return psprintf("%s ...", pnstrdup(statement, n));
}

/*
 * Look at steps first .. of plan (files read from folder): call each_row
 * for each row, with the step's accepted hazards.  Python steps are one
 * opaque row.
 */
typedef void (*RowCallback) (void *arg, TrekPlan *plan, int i,
							 TrekCheckRow *row, List *allowed);

static void
check_steps(TrekPlan *plan, int first, TrekFolder *folder, RowCallback each_row,
			void *arg)
{
	TrekCheckState *cs = TrekCheckBegin(plan, true);
	MemoryContext stepcxt = AllocSetContextCreate(CurrentMemoryContext,
												  "trek check step",
												  ALLOCSET_DEFAULT_SIZES);

	for (int i = first; i < plan->nsteps; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(stepcxt);
		TrekStepInfo info;
		ErrorContextCallback cb;
		int			error_line = 0;
		int			len;
		bool		no_transaction;
		char	   *text;
		List	   *allowed;
		List	   *stmts;
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		text = TrekStepRead(plan, i, folder, &info, &cb, &error_line, true,
							&len, &no_transaction);
		info.text = text;
		allowed = allowed_hazards(&info, text, len);
		if (plan->steps[i].python)
		{
			TrekCheckRow *row = new_row(&info, NULL, 0);

			row->hazard = HAZARD_OPAQUE;
			row->rewrites = row->scans = -1;
			row->advice = "trek cannot see what a Python step does: look at it, or try the plan with trek_rehearse() on a copy of the database.";
			each_row(arg, plan, i, row, allowed);
		}
		else
		{
			info.top_level = no_transaction;
			stmts = TrekStepParse(&info, text, len);
			foreach(lc, stmts)
			{
				List	   *rows;
				ListCell   *lc2;

				CHECK_FOR_INTERRUPTS();
				rows = TrekCheckStatement(cs, &info, lfirst_node(RawStmt, lc), len);
				foreach(lc2, rows)
					each_row(arg, plan, i, lfirst(lc2), allowed);
			}
		}
		error_context_stack = cb.previous;
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(stepcxt);
	}
	MemoryContextDelete(stepcxt);
}

static void
put_row(void *arg, TrekPlan *plan, int i, TrekCheckRow *row, List *allowed)
{
	TrekCheckPutRow((FunctionCallInfo) arg, row);
}

/* trek_check(): a row per statement of plan and relation it affects */
void
TrekCheckList(FunctionCallInfo fcinfo, TrekPlan *plan)
{
	TrekFolder *folder = TrekFolderOfPlan(plan);

	InitMaterializedSRF(fcinfo, 0);
	check_steps(plan, 0, folder, put_row, fcinfo);
	TrekFolderClose(folder);
}

/* ---- the gate ---- */

/* note that step i locks relid in mode, which blocks reads or writes */
static void
note_blocking(TrekStep *s, Oid relid, LOCKMODE mode)
{
	for (int k = 0; k < s->nblocking; k++)
		if (s->blocking[k] == relid)
		{
			s->blocking_modes[k] = Max(s->blocking_modes[k], mode);
			return;
		}
	if (s->nblocking == 0)
	{
		s->blocking = palloc(4 * sizeof(Oid));
		s->blocking_modes = palloc(4 * sizeof(LOCKMODE));
	}
	else if ((s->nblocking & (s->nblocking - 1)) == 0 && s->nblocking >= 4)
	{
		s->blocking = repalloc(s->blocking, 2 * s->nblocking * sizeof(Oid));
		s->blocking_modes = repalloc(s->blocking_modes,
									 2 * s->nblocking * sizeof(LOCKMODE));
	}
	s->blocking[s->nblocking] = relid;
	s->blocking_modes[s->nblocking] = mode;
	s->nblocking++;
}

typedef struct GateState
{
	MemoryContext plancxt;		/* where the plan lives */
} GateState;

static void
gate_row(void *arg, TrekPlan *plan, int i, TrekCheckRow *row, List *allowed)
{
	GateState  *gs = (GateState *) arg;
	TrekStep   *s = &plan->steps[i];
	MemoryContext oldcxt;
	const char *relname;

	if (OidIsValid(row->relation) && row->lock >= ShareLock)
	{
		oldcxt = MemoryContextSwitchTo(gs->plancxt);
		note_blocking(s, row->relation, row->lock);
		MemoryContextSwitchTo(oldcxt);
	}
	if (row->hazard == NULL || strcmp(row->hazard, HAZARD_OPAQUE) == 0)
		return;
	if (is_allowed(allowed, row->hazard))
	{
		/* a comma-separated list: hazards have no commas */
		if (s->accepted == NULL)
			s->accepted = MemoryContextStrdup(gs->plancxt, row->hazard);
		else if (strstr(psprintf(",%s,", s->accepted),
						psprintf(",%s,", row->hazard)) == NULL)
			s->accepted = MemoryContextStrdup(gs->plancxt,
											  psprintf("%s,%s", s->accepted,
													   row->hazard));
		return;
	}
	relname = get_rel_name(row->relation);
	ereport(TrekHazardsSetting == TREK_HAZARDS_REFUSE ? ERROR : WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("migration \"%s\" would %s table \"%s\" (%s) while holding %s, which blocks %s",
					row->file,
					strcmp(row->hazard, HAZARD_REWRITE) == 0 ? "rewrite" :
					strcmp(row->hazard, HAZARD_INDEX) == 0 ? "build an index on" :
					strcmp(row->hazard, HAZARD_ALL_ROWS) == 0 ? "change every row of" :
					"scan",
					relname ? relname : "?", size_text(row->bytes),
					GetLockmodeName(DEFAULT_LOCKMETHOD, row->lock),
					row->every_row ? "writes of those rows" : TrekCheckBlocks(row->lock)),
			 errdetail("Step %d of %d, line %d: %s\nHazard \"%s\": the table is larger than trek.large_table (%s).",
					   row->step, plan->nsteps, row->line,
					   short_statement(row->statement), row->hazard,
					   size_text((int64) TrekLargeTable * 1024)),
			 errhint("%s To accept the hazard, add the line \"-- trek:allow %s\" at the top of \"%s\".",
					 row->advice ? row->advice : "", row->hazard, row->file)));
}

/*
 * The safety gate, before the first step (first) of plan runs: look at
 * every statement from there on and refuse (trek.hazards = refuse) or warn
 * of each hazard a step does not accept; note the accepted hazards and the
 * relations each step locks so as to block traffic in the plan's steps.
 */
void
TrekCheckGate(TrekPlan *plan, int first, TrekFolder *folder)
{
	GateState	gs;

	if (TrekHazardsSetting == TREK_HAZARDS_OFF || first >= plan->nsteps)
		return;
	gs.plancxt = GetMemoryChunkContext(plan->steps);
	check_steps(plan, first, folder, gate_row, &gs);
}

/*
 * Before step i runs: name the sessions that hold or wait for a lock that
 * conflicts with one the step takes in a mode that blocks traffic, since
 * the step waits for them and everything queues behind the step.
 */
void
TrekCheckHolders(TrekPlan *plan, int i)
{
	TrekStep   *s = &plan->steps[i];
	static SPIPlanPtr query = NULL;
	MemoryContext cxt = CurrentMemoryContext;	/* SPI leaves its own */

	for (int k = 0; k < s->nblocking; k++)
	{
		LOCKTAG		tag;
		LockMethod	method;
		LOCKMASK	conflicts;
		Datum		modes[MAX_LOCKMODES];
		int			nmodes = 0;
		Datum		args[2];
		StringInfoData who;
		int			rc;
		char	   *relname = get_rel_name(s->blocking[k]);

		if (relname == NULL)
			continue;
		SET_LOCKTAG_RELATION(tag, MyDatabaseId, s->blocking[k]);
		method = GetLockTagsMethodTable(&tag);
		conflicts = method->conflictTab[s->blocking_modes[k]];
		for (int m = 1; m <= method->numLockModes; m++)
			if (conflicts & LOCKBIT_ON(m))
				modes[nmodes++] = CStringGetTextDatum(GetLockmodeName(DEFAULT_LOCKMETHOD, m));
		if (query == NULL)
		{
			Oid			types[2] = {OIDOID, TEXTARRAYOID};

			query = SPI_prepare("SELECT l.pid, l.mode, l.granted,"
								" COALESCE(a.usename::pg_catalog.text, '?'),"
								" COALESCE(a.state, '?'),"
								" pg_catalog.to_char(pg_catalog.now() OPERATOR(pg_catalog.-) a.xact_start, 'HH24:MI:SS'),"
								" pg_catalog.left(COALESCE(a.query, ''), 60)"
								" FROM pg_catalog.pg_locks l"
								" LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid"
								" WHERE l.locktype OPERATOR(pg_catalog.=) 'relation'"
								" AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())"
								" AND l.relation OPERATOR(pg_catalog.=) $1"
								" AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
								" AND l.mode OPERATOR(pg_catalog.=) ANY ($2)"
								" ORDER BY l.granted DESC, a.xact_start LIMIT 10",
								2, types);
			if (query == NULL)
				elog(ERROR, "SPI_prepare failed: %s",
					 SPI_result_code_string(SPI_result));
			SPI_keepplan(query);
		}
		args[0] = ObjectIdGetDatum(s->blocking[k]);
		args[1] = PointerGetDatum(construct_array(modes, nmodes, TEXTOID, -1,
												  false, TYPALIGN_INT));
		rc = SPI_execute_plan(query, args, NULL, false, 0);
		MemoryContextSwitchTo(cxt);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_locks: %s",
				 SPI_result_code_string(rc));
		if (SPI_processed == 0)
		{
			SPI_freetuptable(SPI_tuptable);
			continue;
		}
		initStringInfo(&who);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char	   *age = SPI_getvalue(tup, desc, 6);

			appendStringInfo(&who, "%spid %s (%s, %s%s%s) %s %s: %s",
							 r > 0 ? "; " : "",
							 SPI_getvalue(tup, desc, 1),
							 SPI_getvalue(tup, desc, 4),
							 SPI_getvalue(tup, desc, 5),
							 age ? ", in a transaction for " : "",
							 age ? age : "",
							 strcmp(SPI_getvalue(tup, desc, 3), "t") == 0 ?
							 "holds" : "waits for",
							 SPI_getvalue(tup, desc, 2),
							 SPI_getvalue(tup, desc, 7));
		}
		ereport(NOTICE,
				(errmsg("migration \"%s\" takes %s on \"%s\", which %d other session%s hold%s or wait%s for in a conflicting mode",
						s->file,
						GetLockmodeName(DEFAULT_LOCKMETHOD, s->blocking_modes[k]),
						relname, (int) SPI_processed,
						SPI_processed == 1 ? "" : "s",
						SPI_processed == 1 ? "s" : "",
						SPI_processed == 1 ? "s" : ""),
				 errdetail("%s", who.data),
				 errhint("The step waits for them, and the %s of \"%s\" wait behind the step.",
						 TrekCheckBlocks(s->blocking_modes[k]), relname)));
		SPI_freetuptable(SPI_tuptable);
	}
	MemoryContextSwitchTo(cxt);
}
