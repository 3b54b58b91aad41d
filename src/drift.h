/*-------------------------------------------------------------------------
 *
 * drift.h
 *	  Applied migration files compared with a folder: which changed or are
 *	  gone, and the error that names them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_DRIFT_H
#define TREK_DRIFT_H

#include "folder.h"
#include "types.h"

/* an applied file in effect that changed or is gone */
typedef struct TrekDrift
{
	TrekHistoryRow *row;
	bool		missing;		/* no longer in the folder */
} TrekDrift;

extern TrekDrift *TrekDriftFind(TrekFolder *folder, TrekMigration *sorted,
								int nmigrations, TrekHistoryRow *rows,
								int nrows, int *ndrift);
extern void TrekDriftReport(const char *track, const char *folder,
							const char *current, TrekDrift *drift,
							int ndrift, const char *hint);

#endif							/* TREK_DRIFT_H */
