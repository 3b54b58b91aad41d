/*-------------------------------------------------------------------------
 *
 * graph.c
 *	  The revision graph of a migration folder and shortest paths in it.
 *
 * Revisions are nodes, migrations are edges, kept apart by direction.  Out
 * edges of a node are stored in file-name order, and breadth-first search
 * takes the first edge that reaches a node, so among equally short paths the
 * answer depends on file names only, not on the order the migrations arrive
 * in (the file system's).  Node numbers do depend on that order, so nothing
 * shown to users is ordered by them.  Building is linear in the number of
 * migrations, plus sorting the out edges of nodes that have several.  No I/O
 * happens here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "graph.h"

/* out edges of one direction, compressed-row style */
typedef struct TrekAdjacency
{
	int		   *start;			/* nnodes + 1 offsets into edges */
	int		   *edges;			/* migration indexes */
} TrekAdjacency;

struct TrekGraph
{
	TrekRevisions *revs;		/* nodes are revision numbers */
	char	  **node_names;
	int			nnodes;
	TrekMigration *migrations;
	int			nmigrations;
	int		   *from_node;		/* per migration */
	int		   *to_node;
	TrekAdjacency adj[2];		/* [0] down, [1] up */
};

static int
edge_cmp(const void *a, const void *b, void *arg)
{
	TrekGraph  *g = arg;

	return strcmp(g->migrations[*(const int *) a].file,
				  g->migrations[*(const int *) b].file);
}

/*
 * Reject two migrations with the same from, to and direction.  Of several
 * such pairs the one named is the same whatever order the files came in:
 * the pair whose second file has the smallest name, with the first file
 * (by name) it repeats.
 */
static void
report_duplicates(TrekGraph *g, int first, int second, bool up)
{
	if (second < 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("migrations \"%s\" and \"%s\" both go %s from revision \"%s\" to \"%s\"",
					g->migrations[first].file,
					g->migrations[second].file,
					up ? "up" : "down",
					g->node_names[g->from_node[second]],
					g->node_names[g->to_node[second]]),
			 errhint("Remove or rename one of the two files.")));
}

/*
 * Out edges of both directions, each node's in file-name order, and the
 * check for duplicates.  Two migrations can only go the same way between
 * the same revisions from a node with two or more out edges of that
 * direction, so only such nodes are sorted and looked at: in a plain chain,
 * none.
 */
static void
build_adjacency(TrekGraph *g)
{
	int			nn = g->nnodes;
	int		   *seen_from = NULL;	/* per node: node that last reached it */
	int		   *seen_edge = NULL;	/* and by which migration */
	int			first[2] = {-1, -1};
	int			second[2] = {-1, -1};

	for (int d = 0; d < 2; d++)
		g->adj[d].start = palloc0((nn + 1) * sizeof(int));
	for (int i = 0; i < g->nmigrations; i++)
	{
		g->from_node[i] = g->migrations[i].from_rev;
		g->to_node[i] = g->migrations[i].to_rev;
		g->adj[g->migrations[i].up ? 1 : 0].start[g->from_node[i] + 1]++;
	}
	for (int d = 0; d < 2; d++)
	{
		TrekAdjacency *a = &g->adj[d];

		for (int n = 0; n < nn; n++)
			a->start[n + 1] += a->start[n];
		a->edges = palloc(Max(a->start[nn], 1) * sizeof(int));
	}

	/* place each edge at its node's cursor, then move the cursors back */
	for (int i = 0; i < g->nmigrations; i++)
	{
		TrekAdjacency *a = &g->adj[g->migrations[i].up ? 1 : 0];

		a->edges[a->start[g->from_node[i]]++] = i;
	}
	for (int d = 0; d < 2; d++)
	{
		TrekAdjacency *a = &g->adj[d];

		memmove(a->start + 1, a->start, nn * sizeof(int));
		a->start[0] = 0;
	}

	for (int d = 0; d < 2; d++)
	{
		TrekAdjacency *a = &g->adj[d];

		for (int n = 0; n < nn; n++)
		{
			int			k = a->start[n + 1] - a->start[n];

			if (k < 2)
				continue;
			CHECK_FOR_INTERRUPTS();
			qsort_arg(a->edges + a->start[n], k, sizeof(int), edge_cmp, g);
			if (seen_from == NULL)
			{
				seen_from = palloc(nn * sizeof(int));
				seen_edge = palloc(nn * sizeof(int));
				memset(seen_from, -1, nn * sizeof(int));
			}
			for (int j = a->start[n]; j < a->start[n + 1]; j++)
			{
				int			e = a->edges[j];
				int			to = g->to_node[e];

				/* seen_from[] holds d * nn + n, so both passes share it */
				if (seen_from[to] != d * nn + n)
				{
					seen_from[to] = d * nn + n;
					seen_edge[to] = e;
				}
				else if (second[d] < 0 ||
						 strcmp(g->migrations[e].file,
								g->migrations[second[d]].file) < 0)
				{
					first[d] = seen_edge[to];
					second[d] = e;
				}
			}
		}
	}
	report_duplicates(g, first[1], second[1], true);
	report_duplicates(g, first[0], second[0], false);
	if (seen_from)
	{
		pfree(seen_from);
		pfree(seen_edge);
	}
}

/*
 * Build the graph of migrations, in any order, whose revisions were
 * numbered in revs (nodes are those numbers); both must stay allocated as
 * long as the graph is used.
 */
TrekGraph *
TrekGraphBuild(TrekMigration *migrations, int nmigrations,
			   TrekRevisions *revs)
{
	TrekGraph  *g = palloc0(sizeof(TrekGraph));

	g->revs = revs;
	g->node_names = TrekRevisionsNames(revs, &g->nnodes);
	g->migrations = migrations;
	g->nmigrations = nmigrations;
	g->from_node = palloc(Max(nmigrations, 1) * sizeof(int));
	g->to_node = palloc(Max(nmigrations, 1) * sizeof(int));
	build_adjacency(g);
	return g;
}

/* node number of a revision, or -1 if the folder does not know it */
int
TrekGraphFind(TrekGraph *g, const char *revision)
{
	return TrekRevisionsFind(g->revs, revision, strlen(revision));
}

const char *
TrekGraphName(TrekGraph *g, int node)
{
	Assert(node >= 0 && node < g->nnodes);
	return g->node_names[node];
}

int
TrekGraphSize(TrekGraph *g)
{
	return g->nnodes;
}

/*
 * Breadth-first search from node from over edges of one direction.  Fills
 * via[n] with the migration that first reached n (-1 if none) and returns
 * the nodes in the order they were reached, from included.
 */
static int *
bfs(TrekGraph *g, int from, bool up, int *via, int *nreached)
{
	TrekAdjacency *a = &g->adj[up ? 1 : 0];
	int		   *queue = palloc(g->nnodes * sizeof(int));
	int			head = 0;
	int			tail = 0;

	/* via[n] == -1 is "not reached yet"; from is marked -2 meanwhile */
	memset(via, -1, g->nnodes * sizeof(int));
	queue[tail++] = from;
	via[from] = -2;
	while (head < tail)
	{
		int			n = queue[head++];

		CHECK_FOR_INTERRUPTS();
		for (int k = a->start[n]; k < a->start[n + 1]; k++)
		{
			int			e = a->edges[k];
			int			to = g->to_node[e];

			if (via[to] == -1)
			{
				via[to] = e;
				queue[tail++] = to;
			}
		}
	}
	via[from] = -1;
	*nreached = tail;
	return queue;
}

/*
 * Shortest path from one node to another using edges of one direction: an
 * array of migration indexes, or NULL if there is no such path.
 */
int *
TrekGraphShortestPath(TrekGraph *g, int from, int to, bool up, int *nsteps)
{
	int		   *via = palloc(g->nnodes * sizeof(int));
	int			nreached;
	int		   *path;
	int			len = 0;

	pfree(bfs(g, from, up, via, &nreached));
	if (from != to && via[to] < 0)
	{
		pfree(via);
		*nsteps = 0;
		return NULL;
	}
	for (int n = to; n != from; n = g->from_node[via[n]])
		len++;
	path = palloc(Max(len, 1) * sizeof(int));
	*nsteps = len;
	for (int n = to; n != from; n = g->from_node[via[n]])
		path[--len] = via[n];
	pfree(via);
	return path;
}

/*
 * Nodes reachable from from (itself excluded) by edges of one direction,
 * nearest first.
 */
int *
TrekGraphReachable(TrekGraph *g, int from, bool up, int *nreached)
{
	int		   *via = palloc(g->nnodes * sizeof(int));
	int		   *order = bfs(g, from, up, via, nreached);

	pfree(via);
	(*nreached)--;
	return order + 1;
}

/*
 * Heads: nodes reachable from "initial" by up edges that have no up edge of
 * their own, in the order they were reached.
 */
int *
TrekGraphHeads(TrekGraph *g, int *nheads)
{
	int		   *via = palloc(g->nnodes * sizeof(int));
	int			nreached;
	int		   *order = bfs(g, TrekGraphFind(g, "initial"), true, via, &nreached);
	TrekAdjacency *a = &g->adj[1];
	int			n = 0;

	for (int i = 0; i < nreached; i++)
	{
		int			node = order[i];

		if (a->start[node] == a->start[node + 1])
			order[n++] = node;
	}
	pfree(via);
	*nheads = n;
	return order;
}
