/*-------------------------------------------------------------------------
 *
 * rehearse.h
 *	  trek_rehearse(): a plan run and always rolled back, watching what
 *	  each statement really locks, rewrites and scans.
 *
 *	  See rehearse.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_REHEARSE_H
#define TREK_REHEARSE_H

#include "fmgr.h"

#include "types.h"

extern int	TrekRehearseLockTimeout;
extern int	TrekRehearseStatementTimeout;

extern void TrekRehearseDefineSettings(void);
extern void TrekRehearse(FunctionCallInfo fcinfo, TrekPlan *plan);

#endif							/* TREK_REHEARSE_H */
