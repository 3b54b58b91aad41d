/*-------------------------------------------------------------------------
 *
 * execute.h
 *	  trek_execute(): a plan in the caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_EXECUTE_H
#define TREK_EXECUTE_H

#include "plan.h"

extern char *TrekExecute(TrekPlan *plan);

#endif							/* TREK_EXECUTE_H */
