/*-------------------------------------------------------------------------
 *
 * exec.h
 *	  Running plans through SPI.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_EXEC_H
#define TREK_EXEC_H

#include "plan.h"

extern char *TrekExecute(TrekPlan *plan);

#endif							/* TREK_EXEC_H */
