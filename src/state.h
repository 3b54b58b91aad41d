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

#include "types.h"

extern void TrekStateLockTags(const char *track, TrekTrackLock *lock);
extern void TrekStateLock(const char *track, TrekTrackLock *lock,
						  bool session);
extern bool TrekStateLockHeld(TrekTrackLock *lock);
extern void TrekStateUnlock(TrekTrackLock *lock);
extern void TrekStateLockReleased(const char *file, const char *track);
extern void TrekPreventIfReadOnly(const char *what, const char *to_do,
								  const char *them);
extern char *TrekStateCurrent(const char *track);
extern char *TrekStateRead(const char *track, bool *owned, Oid *owner,
						   MemoryContext cxt);
extern void TrekStateCheckOwner(const char *track, bool owned, Oid owner,
								const char *what);
extern void TrekStateRecord(TrekPlan *plan, const char *direction,
							const char *dir, int first, int n,
							TimestampTz *started, TimestampTz *finished,
							bool owned);

extern int64 TrekStateRunNextId(void);
extern int64 TrekStateRunStart(TrekPlan *plan, const char *dir,
							   int steps_done, const char *current_file);
extern void TrekStateRunUpdate(int64 id, int steps_done,
							   const char *current_file, const char *state,
							   const char *sqlstate, const char *message,
							   int line);
struct TrekRunRecord;
extern void TrekStateRunInsert(const struct TrekRunRecord *r);
extern void TrekStateRuns(const char *track, Oid userid);

extern Oid	TrekStateOwner(void);

/* operations: stamps, the history of a track, its last run */

extern void TrekStateStamp(const char *track, const char *dir,
						   const char *from, const char *to, bool owned);
extern TrekHistoryRow *TrekStateHistory(const char *track, int *nrows,
										MemoryContext cxt);
extern char *TrekStateLastRun(const char *track, int64 *id, MemoryContext cxt);

#endif							/* TREK_STATE_H */
