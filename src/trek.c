/*-------------------------------------------------------------------------
 *
 * trek.c
 *	  Module magic, settings and the SQL-callable functions of trek.
 *
 * Each entry point unpacks its arguments, calls one module function and
 * packs the result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "catalog/pg_type_d.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "adopt.h"
#include "check.h"
#include "compat.h"
#include "execute.h"
#include "format.h"
#include "migrate.h"
#include "guard.h"
#include "history.h"
#include "ops.h"
#include "plan.h"
#include "rehearse.h"
#include "runs.h"
#include "state.h"

TREK_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	TrekDefineSettings();
	TrekMigrateDefineSettings();
	TrekFormatDefineSetting();
	TrekCheckDefineSettings();
	TrekRehearseDefineSettings();
	MarkGUCPrefixReserved("trek");
	TrekRunsInit();
}

static char *
text_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* a track name: not null, and within TREK_MAX_TRACK_LEN bytes */
static char *
track_arg(FunctionCallInfo fcinfo, int n)
{
	char	   *track = text_arg(fcinfo, n, "track");

	TrekCheckTrackName(track);
	return track;
}

/*
 * Argument n, a migration folder: a path on the server (text), or the
 * folder itself as jsonb.  The SQL functions of both forms share one C
 * function, which tells them apart by the argument's declared type.
 */
static TrekFolderRef *
folder_arg(FunctionCallInfo fcinfo, int n)
{
	TrekFolderRef *ref = palloc0(sizeof(TrekFolderRef));

	if (get_fn_expr_argtype(fcinfo->flinfo, n) == JSONBOID)
	{
		if (PG_ARGISNULL(n))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" must not be null", "folder")));
		ref->sent = PG_GETARG_JSONB_P(n);
	}
	else
		ref->dir = text_arg(fcinfo, n, "dir");
	return ref;
}

PG_FUNCTION_INFO_V1(trek_plan);
Datum
trek_plan(PG_FUNCTION_ARGS)
{
	TrekFolderRef *where = folder_arg(fcinfo, 0);
	char	   *target = text_arg(fcinfo, 1, "target");
	char	   *direction = text_arg(fcinfo, 2, "direction");
	char	   *track = track_arg(fcinfo, 3);
	TrekPlan   *plan;

	plan = TrekPlanMake(where, target, direction, track,
						TrekStateTrail(track, target));

	PG_RETURN_JSONB_P(TrekPlanToJsonb(plan));
}

PG_FUNCTION_INFO_V1(trek_execute);
Datum
trek_execute(PG_FUNCTION_ARGS)
{
	TrekPlan   *plan;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", "plan")));
	plan = TrekPlanFromJsonb(PG_GETARG_JSONB_P(0));
	PG_RETURN_TEXT_P(cstring_to_text(TrekExecute(plan)));
}

PG_FUNCTION_INFO_V1(trek_current);
Datum
trek_current(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(TrekStateCurrent(track_arg(fcinfo, 0))));
}

/* was this procedure called where it may commit? */
static bool
call_is_atomic(FunctionCallInfo fcinfo)
{
	return fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic;
}

PG_FUNCTION_INFO_V1(trek_migrate);
Datum
trek_migrate(PG_FUNCTION_ARGS)
{
	TrekMigrate(call_is_atomic(fcinfo), NULL,
				folder_arg(fcinfo, 0), text_arg(fcinfo, 1, "target"),
				text_arg(fcinfo, 2, "direction"), track_arg(fcinfo, 3));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(trek_migrate_plan);
Datum
trek_migrate_plan(PG_FUNCTION_ARGS)
{
	bool		atomic = call_is_atomic(fcinfo);
	TrekPlan   *plan;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", "plan")));
	plan = TrekPlanFromJsonb(PG_GETARG_JSONB_P(0));
	TrekMigrate(atomic, plan, NULL, NULL, NULL, NULL);
	PG_RETURN_VOID();
}

/* ---- the safety gate ---- */

/* a plan given as argument 0, or made from the folder of arguments 0 to 3 */
static TrekPlan *
plan_arg(FunctionCallInfo fcinfo)
{
	char	   *track;

	if (PG_NARGS() == 1)
	{
		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" must not be null", "plan")));
		return TrekPlanFromJsonb(PG_GETARG_JSONB_P(0));
	}
	track = track_arg(fcinfo, 3);
	return TrekPlanMake(folder_arg(fcinfo, 0), text_arg(fcinfo, 1, "target"),
						text_arg(fcinfo, 2, "direction"), track,
						TrekStateTrail(track, text_arg(fcinfo, 1, "target")));
}

PG_FUNCTION_INFO_V1(trek_check);
Datum
trek_check(PG_FUNCTION_ARGS)
{
	TrekCheckList(fcinfo, plan_arg(fcinfo));
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(trek_rehearse);
Datum
trek_rehearse(PG_FUNCTION_ARGS)
{
	TrekRehearse(fcinfo, plan_arg(fcinfo));
	return (Datum) 0;
}

/* ---- operations: status, verification, stamps, pictures ---- */

PG_FUNCTION_INFO_V1(trek_status);
Datum
trek_status(PG_FUNCTION_ARGS)
{
	TrekOpsStatus(fcinfo, folder_arg(fcinfo, 0),
				  track_arg(fcinfo, 1));
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(trek_verify);
Datum
trek_verify(PG_FUNCTION_ARGS)
{
	TrekOpsVerify(folder_arg(fcinfo, 0), track_arg(fcinfo, 1));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(trek_stamp);
Datum
trek_stamp(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(TrekOpsStamp(folder_arg(fcinfo, 0),
												  text_arg(fcinfo, 1, "revision"),
												  track_arg(fcinfo, 2))));
}

PG_FUNCTION_INFO_V1(trek_adopt);
Datum
trek_adopt(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(TrekAdopt(folder_arg(fcinfo, 0),
											   track_arg(fcinfo, 1),
											   PG_ARGISNULL(2) ? NULL :
											   text_to_cstring(PG_GETARG_TEXT_PP(2)))));
}

PG_FUNCTION_INFO_V1(trek_graph);
Datum
trek_graph(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(TrekOpsGraph(folder_arg(fcinfo, 0),
												  text_arg(fcinfo, 1, "format"),
												  track_arg(fcinfo, 2))));
}

PG_FUNCTION_INFO_V1(trek_runs);
Datum
trek_runs(PG_FUNCTION_ARGS)
{
	TrekRunsList(fcinfo, PG_ARGISNULL(0) ? NULL :
				 text_to_cstring(PG_GETARG_TEXT_PP(0)));
	return (Datum) 0;
}
