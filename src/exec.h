/*-------------------------------------------------------------------------
 *
 * exec.h
 *	  Running plans through SPI.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_EXEC_H
#define TREK_EXEC_H

#include "storage/lock.h"

#include "plan.h"

extern char *TrekExecute(TrekPlan *plan);
extern char *TrekLockHolders(const LOCKTAG *waited);
extern bool TrekExecuting(void);
extern void TrekPreventIfReadOnly(const char *what, const char *to_do,
								  const char *them);
extern void TrekMigrate(bool atomic, TrekPlan *given, const char *dir,
						const char *target, const char *direction,
						const char *track);

#endif							/* TREK_EXEC_H */
