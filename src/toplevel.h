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

#include "nodes/parsenodes.h"
#include "utils/timeout.h"

extern void TrekTopLevelEnter(void);
extern void TrekTopLevelLeave(MemoryContext spicxt);
extern ErrorData *TrekTopLevelCatch(MemoryContext cxt);
extern ErrorData *TrekTopLevelRun(RawStmt *raw, const char *text,
								  TimeoutId probe,
								  char *(*holders_fn) (void), char **holders,
								  MemoryContext cxt);

#endif							/* TREK_TOPLEVEL_H */
