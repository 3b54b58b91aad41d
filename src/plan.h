/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  Making plans, and converting them to and from jsonb.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_PLAN_H
#define TREK_PLAN_H

#include <limits.h>

#include "utils/jsonb.h"

#include "folder.h"

#define TREK_PLAN_FORMAT 1

/*
 * Bounds on what a plan carries, checked by trek_plan and again when a plan
 * comes back as jsonb, before anything is written.  A track name is stored
 * in every history and runs row; a file name is one path component
 * (NAME_MAX), and a revision is part of one; the folder is a path trek can
 * open (PATH_MAX - 1 bytes after "." and ".." are folded).  The step and
 * size bounds are several times what a folder of 100,000 revisions plans.
 */
#define TREK_MAX_TRACK_LEN 255
#define TREK_MAX_NAME_LEN 255
#define TREK_MAX_DIR_LEN (PATH_MAX - 1)
#define TREK_PLAN_MAX_STEPS 500000
#define TREK_PLAN_MAX_BYTES (128 * 1024 * 1024)

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
extern void TrekCheckTrackName(const char *track);
extern TrekPlan *TrekPlanMake(const char *dir, const char *target,
							  const char *direction, const char *track);
struct TrekGraph;
extern int	TrekPlanResolve(struct TrekGraph *graph, const char *revision,
							const char *dir);
extern Jsonb *TrekPlanToJsonb(TrekPlan *plan);
extern TrekPlan *TrekPlanFromJsonb(Jsonb *jb);

#endif							/* TREK_PLAN_H */
