/*-------------------------------------------------------------------------
 *
 * notxn.h
 *	  Running a step outside a transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_NOTXN_H
#define TREK_NOTXN_H

#include "state.h"
#include "step.h"

extern ErrorData *TrekNotxnRun(TrekPendingStep *p, TrekTrackLock *lock,
							   const char *track, int lock_timeout,
							   int retries, MemoryContext cxt);

#endif							/* TREK_NOTXN_H */
