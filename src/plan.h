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

#include "types.h"


extern const char *TrekDirectionName(TrekDirection direction);
extern void TrekCheckTrackName(const char *track);
extern int	TrekPlanRelative(const char *target);
extern TrekPlan *TrekPlanMake(const TrekFolderRef *where, const char *target,
							  const char *direction, const char *track,
							  const TrekTrail *trail);
struct TrekGraph;
extern int	TrekPlanResolve(struct TrekGraph *graph, const char *revision,
							const char *dir);
extern Jsonb *TrekPlanToJsonb(TrekPlan *plan);
extern TrekPlan *TrekPlanFromJsonb(Jsonb *jb);

#endif							/* TREK_PLAN_H */
