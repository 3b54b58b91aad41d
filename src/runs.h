/*-------------------------------------------------------------------------
 *
 * runs.h
 *	  Runs of trek_execute() in shared memory, and the list of all runs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_RUNS_H
#define TREK_RUNS_H

#include "fmgr.h"

#include "types.h"


extern void TrekRunsInit(void);
extern void TrekRunsCopy(char *dst, const char *src, int size);

/* trek_execute(): its run, visible to other sessions while it runs */
extern void TrekRunsBegin(const TrekRunRecord *rec);
extern void TrekRunsProgress(int step, const char *current_file);
extern void TrekRunsFailed(const char *file, int line, int sqlerrcode,
						   const char *message);
extern void TrekRunsDone(void);

/* write finished runs of other transactions into trek.runs (needs SPI) */
extern void TrekRunsPersist(void);

/* trek_runs() and trek_status()'s last_run */
extern void TrekRunsList(FunctionCallInfo fcinfo, const char *track);
extern char *TrekRunsLast(const char *track, MemoryContext cxt);

#endif							/* TREK_RUNS_H */
