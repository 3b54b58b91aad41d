/*-------------------------------------------------------------------------
 *
 * graph.h
 *	  The revision graph of a migration folder and shortest paths in it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_GRAPH_H
#define TREK_GRAPH_H

#include "names.h"
#include "types.h"

typedef struct TrekGraph TrekGraph;

extern TrekGraph *TrekGraphBuild(TrekMigration *migrations, int nmigrations,
								 TrekRevisions *revs);
extern int	TrekGraphFind(TrekGraph *graph, const char *revision);
extern const char *TrekGraphName(TrekGraph *graph, int node);
extern int	TrekGraphSize(TrekGraph *graph);
extern int *TrekGraphShortestPath(TrekGraph *graph, int from, int to, bool up,
								  int *nsteps);
extern int *TrekGraphHeads(TrekGraph *graph, int *nheads);
extern int *TrekGraphReachable(TrekGraph *graph, int from, bool up,
							   int *nreached);

#endif							/* TREK_GRAPH_H */
