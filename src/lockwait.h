/*-------------------------------------------------------------------------
 *
 * lockwait.h
 *	  Waiting for locks: which lock a step waits for, who holds it, and the
 *	  pauses between retries.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_LOCKWAIT_H
#define TREK_LOCKWAIT_H

#include "storage/lock.h"
#include "utils/timeout.h"

extern TimeoutId TrekLockWaitProbe(void);
extern void TrekLockWaitStart(void);
extern void TrekLockWaitStop(void);
extern char *TrekLockWaitHolders(void);
extern void TrekLockWaitPause(long ms);
extern long TrekLockWaitRetry(ErrorData *edata, const char *who,
							  const char *file, int i, int nsteps,
							  int *attempt, int retries, MemoryContext cxt);

#endif							/* TREK_LOCKWAIT_H */
