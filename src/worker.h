/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background workers of trek.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_WORKER_H
#define TREK_WORKER_H

#include "datatype/timestamp.h"

/* a failed trek_execute() run, as trek.runs records it */
typedef struct TrekFailedRun
{
	const char *track;
	const char *dir;
	const char *from;
	const char *target;
	const char *run_by;
	const char *current_file;
	const char *sqlstate;
	const char *message;
	int			steps_done;
	int			steps_planned;
	int			pid;
	TimestampTz started_at;
	TimestampTz finished_at;
	TimestampTz backend_start;
} TrekFailedRun;

extern bool TrekRecordFailedRun(TrekFailedRun *run, Oid owner);

#endif							/* TREK_WORKER_H */
