/*-------------------------------------------------------------------------
 *
 * exec.h
 *	  Running plans through SPI and keeping trek.history.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_EXEC_H
#define TREK_EXEC_H

#include "plan.h"

extern char *TrekHistoryCurrent(const char *track);
extern char *TrekExecute(TrekPlan *plan);

#endif							/* TREK_EXEC_H */
