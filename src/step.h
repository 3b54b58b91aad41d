/*-------------------------------------------------------------------------
 *
 * step.h
 *	  Running one step of a plan: its file read again, checked and run.
 *
 *	  See step.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_STEP_H
#define TREK_STEP_H

#include "nodes/parsenodes.h"

#include "folder.h"
#include "plan.h"

/* what the error context of a step knows about it (TrekStepContext) */
typedef struct TrekStepInfo
{
	const char *file;
	int			step;
	int			nsteps;
	const char *text;			/* file contents once read, else NULL */
	int			offset;			/* byte offset of the current statement */
	bool		parsing;		/* inside raw_parser */
	int			line;			/* line a Python step failed at, else 0 */
	bool		top_level;		/* a step outside a transaction */
	bool		unwrap;			/* another tool's: BEGIN ... COMMIT is the
								 * step's own transaction */
	int		   *error_line;		/* where to note the line of an error */
} TrekStepInfo;

/* how far a run got: for the record of its failure */
typedef struct TrekProgress
{
	int			step;			/* index of the step running, or -1 */
	int			line;			/* line of the last error in it, or 0 */
} TrekProgress;

/*
 * A step outside a transaction, read and checked by TrekStepRun() and
 * still to be run (notxn.c), in memory that commits do not free.
 */
typedef struct TrekPendingStep
{
	TrekStepInfo info;
	char	   *text;
	int			len;
	List	   *stmts;			/* RawStmt nodes as checked */
} TrekPendingStep;

/* called before (after = false) and after each statement of a step */
typedef void (*TrekStatementHook) (void *arg, TrekStepInfo *info,
								   RawStmt *raw, bool after);

extern void TrekStepContext(void *arg);
extern char *TrekStepRead(TrekPlan *plan, int i, TrekFolder *folder,
						  TrekStepInfo *info, ErrorContextCallback *cb,
						  int *error_line, bool may_leave, int *len,
						  bool *no_transaction);
extern List *TrekStepParse(TrekStepInfo *info, char *text, int len);
extern void TrekStepRunSql(TrekStepInfo *info, char *text, int len,
						   TrekStatementHook hook, void *arg);
extern TrekPendingStep *TrekStepRun(TrekPlan *plan, int i, TrekFolder *folder,
									TrekProgress *progress, bool may_leave);
extern bool TrekStepAlreadyThere(TrekPlan *plan, const char *current);
extern int	TrekStepFirstOutside(TrekPlan *plan, int from);
extern char *TrekStepWhyOutside(TrekPlan *plan, int i);
extern void TrekStepCheckPython(TrekPlan *plan, int from);
extern void TrekStepReport(const char *call, TrekPlan *plan, int i);
extern bool TrekExecuting(void);
extern void TrekSetExecuting(bool executing);

#endif							/* TREK_STEP_H */
