/*-------------------------------------------------------------------------
 *
 * toplevel.h
 *	  Running statements as top-level commands, for steps outside a
 *	  transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_TOPLEVEL_H
#define TREK_TOPLEVEL_H

#include "storage/lock.h"

typedef struct TrekTopLevel TrekTopLevel;

extern TrekTopLevel *TrekTopLevelStart(void);
extern ErrorData *TrekTopLevelRun(TrekTopLevel *w, const char *sql,
								  char **holders);
extern void TrekTopLevelStop(TrekTopLevel *w, bool wait);

#endif							/* TREK_TOPLEVEL_H */
