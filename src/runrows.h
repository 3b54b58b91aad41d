/*-------------------------------------------------------------------------
 *
 * runrows.h
 *	  trek.runs: the rows of runs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_RUNROWS_H
#define TREK_RUNROWS_H

#include "types.h"

extern int64 TrekStateRunNextId(void);
extern int64 TrekStateRunStart(TrekPlan *plan, const char *dir,
							   int steps_done, const char *current_file);
extern void TrekStateRunUpdate(int64 id, int steps_done,
							   const char *current_file, const char *state,
							   const char *sqlstate, const char *message,
							   int line);
extern void TrekStateRunInsert(const TrekRunRecord *r);
extern void TrekStateRuns(const char *track, Oid userid);
extern char *TrekStateLastRun(const char *track, int64 *id, MemoryContext cxt);

#endif							/* TREK_RUNROWS_H */
