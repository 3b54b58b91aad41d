/*-------------------------------------------------------------------------
 *
 * check.h
 *	  The safety gate: what each statement of a plan will lock, rewrite and
 *	  scan on this database, before it runs.
 *
 *	  See check.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_CHECK_H
#define TREK_CHECK_H

#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/resowner.h"

#include "folder.h"
#include "step.h"
#include "types.h"

/* trek.hazards */
typedef enum TrekHazards
{
	TREK_HAZARDS_REFUSE,
	TREK_HAZARDS_WARN,
	TREK_HAZARDS_OFF
}			TrekHazards;

extern int	TrekHazardsSetting;
extern int	TrekLargeTable;

/*
 * One row of trek_check() and trek_rehearse(): a statement and one
 * relation it affects (InvalidOid: none that exists now).  rewrites and
 * scans are 1, 0, or -1 for "cannot tell"; rows and bytes -1 when unknown.
 */
typedef struct TrekCheckRow
{
	int			step;			/* 1-based */
	const char *file;
	int			line;
	char	   *statement;		/* NULL: the whole step (Python) */
	Oid			relation;
	LOCKMODE	lock;			/* NoLock: none known */
	int			rewrites;
	int			scans;
	int64		rows;
	int64		bytes;
	const char *hazard;			/* NULL: none */
	const char *advice;
	bool		every_row;		/* an UPDATE or DELETE of every row */
	bool		index_build;
	bool		empties;		/* TRUNCATE: a new, empty file */
} TrekCheckRow;

/* what trek_rehearse() keeps from the analysis of a statement */
typedef struct TrekCheckState TrekCheckState;

extern void TrekCheckDefineSettings(void);
extern ErrorData *TrekCheckRollback(MemoryContext cxt, ResourceOwner owner);
extern TrekCheckState *TrekCheckBegin(TrekPlan *plan, bool cache_sizes);
extern TrekCheckRow *TrekCheckStatementRow(TrekStepInfo *info, RawStmt *raw,
										   int len);
extern List *TrekCheckStatement(TrekCheckState *cs, TrekStepInfo *info,
								RawStmt *raw, int len);
extern const char *TrekCheckBlocks(LOCKMODE mode);
extern void TrekCheckHazard(TrekCheckRow *row);
extern void TrekCheckPutRow(FunctionCallInfo fcinfo, TrekCheckRow *row);
extern void TrekCheckSize(Oid relid, int64 *rows, int64 *bytes);
extern void TrekCheckList(FunctionCallInfo fcinfo, TrekPlan *plan);
extern void TrekCheckGate(TrekPlan *plan, int first, TrekFolder *folder);
extern void TrekCheckHolders(TrekPlan *plan, int i);

#endif							/* TREK_CHECK_H */
