/*-------------------------------------------------------------------------
 *
 * trek_bench_baseline.c
 *	  The reference bench/check.sh times trek_check() against: what any
 *	  look at a folder of migrations with the server's grammar and catalog
 *	  must do at least.
 *
 * trek_bench_parse(dir) reads every .sql file of a server folder, parses
 * each with raw_parser(), finds the relations each statement names
 * (RangeVar nodes: the target of the usual DDL statements, and every
 * RangeVar of a query, through raw_expression_tree_walker) and looks each
 * up once with RangeVarGetRelid(rv, NoLock, true).  It returns the number
 * of statements, of relations named and of those that exist.
 *
 * No privilege check: the extension's script revokes the function from
 * PUBLIC and creating it needs a superuser.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

typedef struct Counts
{
	int64		statements;
	int64		relations;
	int64		found;
} Counts;

static void
look_up(RangeVar *rv, Counts *counts)
{
	if (rv == NULL || rv->relname == NULL)
		return;
	counts->relations++;
	if (OidIsValid(RangeVarGetRelid(rv, NoLock, true)))
		counts->found++;
}

/* every RangeVar under node (a query or a part of one) */
static bool
range_vars(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeVar))
	{
		look_up((RangeVar *) node, (Counts *) context);
		return false;
	}
	return raw_expression_tree_walker(node, range_vars, context);
}

/*
 * The relations statement stmt names.  raw_expression_tree_walker() knows
 * queries but no utility statement, so the relation of each DDL statement
 * a migration commonly holds is taken from its own field.
 */
static void
statement_relations(Node *stmt, Counts *counts)
{
	ListCell   *lc;

	switch (nodeTag(stmt))
	{
		case T_SelectStmt:
		case T_InsertStmt:
		case T_UpdateStmt:
		case T_DeleteStmt:
			(void) range_vars(stmt, counts);
			break;
		case T_AlterTableStmt:
			look_up(((AlterTableStmt *) stmt)->relation, counts);
			break;
		case T_IndexStmt:
			look_up(((IndexStmt *) stmt)->relation, counts);
			break;
		case T_CreateStmt:
			look_up(((CreateStmt *) stmt)->relation, counts);
			foreach(lc, ((CreateStmt *) stmt)->inhRelations)
				look_up(lfirst_node(RangeVar, lc), counts);
			break;
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) stmt)->relations)
				look_up(lfirst_node(RangeVar, lc), counts);
			break;
		case T_RenameStmt:
			look_up(((RenameStmt *) stmt)->relation, counts);
			break;
		case T_CreateTrigStmt:
			look_up(((CreateTrigStmt *) stmt)->relation, counts);
			break;
		case T_DropStmt:
			{
				DropStmt   *d = (DropStmt *) stmt;

				if (d->removeType != OBJECT_TABLE && d->removeType != OBJECT_INDEX &&
					d->removeType != OBJECT_VIEW && d->removeType != OBJECT_SEQUENCE &&
					d->removeType != OBJECT_MATVIEW)
					break;
				foreach(lc, d->objects)
					look_up(makeRangeVarFromNameList((List *) lfirst(lc)), counts);
				break;
			}
		default:
			break;
	}
}

/* the whole of file path, NUL-terminated, as core's read_whole_file does */
static char *
read_file(const char *path, int *len)
{
	struct stat st;
	FILE	   *file;
	char	   *buf;
	size_t		got;

	if (stat(path, &st) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	if (st.st_size > (off_t) (MaxAllocSize - 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("file \"%s\" is too large", path)));
	if ((file = AllocateFile(path, PG_BINARY_R)) == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	buf = palloc(st.st_size + 1);
	got = fread(buf, 1, st.st_size, file);
	if (ferror(file))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	FreeFile(file);
	buf[got] = '\0';
	*len = (int) got;
	return buf;
}

PG_FUNCTION_INFO_V1(trek_bench_parse);

Datum
trek_bench_parse(PG_FUNCTION_ARGS)
{
	char	   *dir = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Counts		counts = {0, 0, 0};
	MemoryContext filecxt;
	DIR		   *d;
	struct dirent *de;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	filecxt = AllocSetContextCreate(CurrentMemoryContext, "trek_bench_parse file",
									ALLOCSET_DEFAULT_SIZES);
	d = AllocateDir(dir);
	while ((de = ReadDir(d, dir)) != NULL)
	{
		size_t		namelen = strlen(de->d_name);
		MemoryContext oldcxt;
		char	   *text;
		int			len;
		List	   *stmts;
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		if (de->d_name[0] == '.' || namelen < 5 ||
			strcmp(de->d_name + namelen - 4, ".sql") != 0)
			continue;
		oldcxt = MemoryContextSwitchTo(filecxt);
		text = read_file(psprintf("%s/%s", dir, de->d_name), &len);
		stmts = raw_parser(text, RAW_PARSE_DEFAULT);
		foreach(lc, stmts)
		{
			counts.statements++;
			statement_relations(lfirst_node(RawStmt, lc)->stmt, &counts);
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(filecxt);
	}
	FreeDir(d);
	MemoryContextDelete(filecxt);

	values[0] = Int64GetDatum(counts.statements);
	values[1] = Int64GetDatum(counts.relations);
	values[2] = Int64GetDatum(counts.found);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}
