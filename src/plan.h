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

/* which edges a plan follows; TREK_AUTO is only asked for, never planned */
typedef enum TrekDirection
{
	TREK_NONE,					/* already at the target: no steps */
	TREK_UP,
	TREK_DOWN,
	TREK_AUTO,					/* up if that reaches the target, else down */
	TREK_STAMP					/* a history row only: no migration ran */
} TrekDirection;

typedef struct TrekStep
{
	char	   *file;
	char	   *from;
	char	   *to;
	bool		python;
	bool		no_transaction; /* runs outside a transaction (trek_migrate) */
	char		sha256[TREK_SHA256_HEX_LEN + 1];
} TrekStep;

typedef struct TrekPlan
{
	char	   *track;
	char	   *dir;
	char	   *from;
	char	   *to;
	TrekDirection direction;	/* TREK_UP, TREK_DOWN or TREK_NONE */
	int			nsteps;
	TrekStep   *steps;
} TrekPlan;

extern const char *TrekDirectionName(TrekDirection direction);
extern TrekPlan *TrekPlanMake(const char *dir, const char *target,
							  const char *direction, const char *track);
struct TrekGraph;
extern int	TrekPlanResolve(struct TrekGraph *graph, const char *revision,
							const char *dir);
extern Jsonb *TrekPlanToJsonb(TrekPlan *plan);
extern TrekPlan *TrekPlanFromJsonb(Jsonb *jb);

#endif							/* TREK_PLAN_H */
