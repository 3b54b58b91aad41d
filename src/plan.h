/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  Making plans, and converting them to and from jsonb.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_PLAN_H
#define TREK_PLAN_H

#include "utils/jsonb.h"

#include "folder.h"

#define TREK_PLAN_FORMAT 1

typedef struct TrekStep
{
	char	   *file;
	char	   *from;
	char	   *to;
	bool		python;
	char		sha256[TREK_SHA256_HEX_LEN + 1];
} TrekStep;

typedef struct TrekPlan
{
	char	   *track;
	char	   *dir;
	char	   *from;
	char	   *to;
	char	   *direction;		/* "up", "down" or "none" */
	int			nsteps;
	TrekStep   *steps;
} TrekPlan;

extern TrekPlan *TrekPlanMake(const char *dir, const char *target,
							  const char *direction, const char *track);
extern Jsonb *TrekPlanToJsonb(TrekPlan *plan);
extern TrekPlan *TrekPlanFromJsonb(Jsonb *jb);

#endif							/* TREK_PLAN_H */
