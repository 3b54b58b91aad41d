/*-------------------------------------------------------------------------
 *
 * history.h
 *	  trek.history: the rows of applied steps and stamps.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_HISTORY_H
#define TREK_HISTORY_H

#include "types.h"

extern void TrekStateRecord(TrekPlan *plan, const char *direction,
							const char *dir, int first, int n,
							TimestampTz *started, TimestampTz *finished,
							bool owned);
extern void TrekStateStampFile(const char *track, const char *dir,
							   const char *from, const char *to,
							   const char *file, const char *sha256,
							   const char *tool, bool owned);
extern TrekHistoryRow *TrekStateRepeatables(const char *track, int *n);
extern bool TrekRepeatableChanged(const TrekHistoryRow *last, int nlast,
								  const char *file, const char *sha256);
extern void TrekStateStamp(const char *track, const char *dir,
						   const char *from, const char *to, bool owned);
extern TrekHistoryRow *TrekStateHistory(const char *track, int *nrows,
										MemoryContext cxt);
extern TrekTrail *TrekStateTrail(const char *track, const char *target);

#endif							/* TREK_HISTORY_H */
