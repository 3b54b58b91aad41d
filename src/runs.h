/*-------------------------------------------------------------------------
 *
 * runs.h
 *	  Runs of trek_execute() in shared memory, and the list of all runs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_RUNS_H
#define TREK_RUNS_H

#include "datatype/timestamp.h"
#include "fmgr.h"

#include "plan.h"

/* longest names and message a run's record keeps, in bytes with the NUL */
#define TREK_RUN_NAME_LEN (TREK_MAX_NAME_LEN + 1)
#define TREK_RUN_DIR_LEN (TREK_MAX_DIR_LEN + 1)
#define TREK_RUN_MESSAGE_LEN 1024

/* a run's state, as trek.runs spells it */
#define TREK_RUN_RUNNING "running"
#define TREK_RUN_DONE "done"
#define TREK_RUN_FAILED "failed"
#define TREK_RUN_INTERRUPTED "interrupted"

/* one run, as trek.runs records it; strings cut to fit */
typedef struct TrekRunRecord
{
	int64		id;
	Oid			database;
	Oid			owner;			/* the track's owner, or InvalidOid */
	Oid			run_by_id;
	int			pid;
	TimestampTz backend_start;
	int			steps_done;
	int			steps_planned;
	int			line;			/* of the error in current_file, or 0 */
	TimestampTz started_at;
	TimestampTz current_since;	/* 0: none */
	TimestampTz finished_at;	/* 0: none */
	char		state[16];
	char		sqlstate[6];
	char		track[TREK_RUN_NAME_LEN];
	char		dir[TREK_RUN_DIR_LEN];
	char		from[TREK_RUN_NAME_LEN];
	char		target[TREK_RUN_NAME_LEN];
	char		current_file[TREK_RUN_NAME_LEN];
	char		run_by[NAMEDATALEN];
	char		message[TREK_RUN_MESSAGE_LEN];
} TrekRunRecord;

extern void TrekRunsInit(void);
extern bool TrekRunsShared(void);
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
