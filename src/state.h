/*-------------------------------------------------------------------------
 *
 * state.h
 *	  trek's own state: the track lock, where a track is, who owns it, and
 *	  the history of applied steps.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_STATE_H
#define TREK_STATE_H

#include "datatype/timestamp.h"

#include "plan.h"

extern void TrekStateLock(const char *track, bool session);
extern void TrekStateUnlock(const char *track, bool session);
extern char *TrekStateCurrent(const char *track);
extern char *TrekStateRead(const char *track, bool *owned, Oid *owner,
						   MemoryContext cxt);
extern void TrekStateCheckOwner(const char *track, bool owned, Oid owner,
								const char *what);
extern void TrekStateRecord(TrekPlan *plan, const char *dir, int first, int n,
							TimestampTz *started, TimestampTz *finished,
							bool owned);

extern int64 TrekStateRunStart(TrekPlan *plan, const char *dir,
							   const char *call, const char *state,
							   int steps_done, const char *current_file);
extern void TrekStateRunUpdate(int64 id, int steps_done,
							   const char *current_file, const char *state,
							   const char *sqlstate, const char *message);

extern Oid	TrekStateOwner(void);
extern bool TrekStateRecordsRuns(void);

struct TrekFailedRun;
extern void TrekStateRunFailed(struct TrekFailedRun *run);

/* operations: stamps, the history of a track, its last run */
typedef struct TrekHistoryRow
{
	int64		id;
	char	   *from;
	char	   *to;
	TrekDirection direction;	/* TREK_UP, TREK_DOWN or TREK_STAMP */
	char	   *file;			/* NULL for a stamp */
	char	   *sha256;			/* NULL for a stamp */
} TrekHistoryRow;

extern void TrekStateStamp(const char *track, const char *dir,
						   const char *from, const char *to, bool owned);
extern TrekHistoryRow *TrekStateHistory(const char *track, int *nrows,
										MemoryContext cxt);
extern char *TrekStateLastRun(const char *track, MemoryContext cxt);

#endif							/* TREK_STATE_H */
