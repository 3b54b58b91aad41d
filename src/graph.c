/*-------------------------------------------------------------------------
 *
 * graph.c
 *	  The revision graph of a migration folder and shortest paths in it.
 *
 * Revisions are nodes, migrations are edges, kept apart by direction.  Out
 * edges of a node are stored in file-name order (the order the migrations
 * arrive in), and breadth-first search takes the first edge that reaches a
 * node, so among equally short paths the answer depends on file names only.
 * Everything is linear in the number of migrations.  No I/O happens here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"

#include "graph.h"

typedef struct TrekNodeEntry
{
	const char *name;			/* hash key */
	int			node;
	char		status;			/* simplehash bookkeeping */
} TrekNodeEntry;

#define SH_PREFIX		trek_nodes
#define SH_ELEMENT_TYPE TrekNodeEntry
#define SH_KEY_TYPE		const char *
#define SH_KEY			name
#define SH_HASH_KEY(tb, key) hash_bytes((const unsigned char *) (key), strlen(key))
#define SH_EQUAL(tb, a, b) (strcmp(a, b) == 0)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* out edges of one direction, compressed-row style */
typedef struct TrekAdjacency
{
	int		   *start;			/* nnodes + 1 offsets into edges */
	int		   *edges;			/* migration indexes */
} TrekAdjacency;

struct TrekGraph
{
	trek_nodes_hash *names;
	const char **node_names;
	int			nnodes;
	TrekMigration *migrations;
	int			nmigrations;
	int		   *from_node;		/* per migration */
	int		   *to_node;
	TrekAdjacency adj[2];		/* [0] down, [1] up */
};

static int
add_node(TrekGraph *g, const char *name)
{
	bool		found;
	TrekNodeEntry *e = trek_nodes_insert(g->names, name, &found);

	if (!found)
	{
		e->node = g->nnodes;
		g->node_names[g->nnodes++] = name;
	}
	return e->node;
}

static void
build_adjacency(TrekGraph *g, bool up)
{
	TrekAdjacency *a = &g->adj[up ? 1 : 0];
	int		   *fill = palloc0((g->nnodes + 1) * sizeof(int));

	a->start = palloc0((g->nnodes + 1) * sizeof(int));
	for (int i = 0; i < g->nmigrations; i++)
		if (g->migrations[i].up == up)
			a->start[g->from_node[i] + 1]++;
	for (int n = 0; n < g->nnodes; n++)
		a->start[n + 1] += a->start[n];
	a->edges = palloc(Max(a->start[g->nnodes], 1) * sizeof(int));
	for (int i = 0; i < g->nmigrations; i++)
	{
		int			from = g->from_node[i];

		if (g->migrations[i].up == up)
			a->edges[a->start[from] + fill[from]++] = i;
	}
	pfree(fill);
}

/*
 * Reject two migrations with the same from, to and direction.
 */
static void
check_duplicates(TrekGraph *g, bool up)
{
	TrekAdjacency *a = &g->adj[up ? 1 : 0];
	int		   *seen_from = palloc(g->nnodes * sizeof(int));
	int		   *seen_edge = palloc(g->nnodes * sizeof(int));

	for (int n = 0; n < g->nnodes; n++)
		seen_from[n] = -1;
	for (int n = 0; n < g->nnodes; n++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int k = a->start[n]; k < a->start[n + 1]; k++)
		{
			int			e = a->edges[k];
			int			to = g->to_node[e];

			if (seen_from[to] == n)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("migrations \"%s\" and \"%s\" both go %s from revision \"%s\" to \"%s\"",
								g->migrations[seen_edge[to]].file,
								g->migrations[e].file,
								up ? "up" : "down",
								g->node_names[n], g->node_names[to]),
						 errhint("Remove or rename one of the two files.")));
			seen_from[to] = n;
			seen_edge[to] = e;
		}
	}
	pfree(seen_from);
	pfree(seen_edge);
}

/*
 * Build the graph of migrations, which must be sorted by file name and
 * must stay allocated as long as the graph is used.
 */
TrekGraph *
TrekGraphBuild(TrekMigration *migrations, int nmigrations)
{
	TrekGraph  *g = palloc0(sizeof(TrekGraph));

	g->migrations = migrations;
	g->nmigrations = nmigrations;
	g->names = trek_nodes_create(CurrentMemoryContext, 2 * nmigrations + 1,
								 NULL);
	g->node_names = palloc((2 * nmigrations + 1) * sizeof(char *));
	g->from_node = palloc(Max(nmigrations, 1) * sizeof(int));
	g->to_node = palloc(Max(nmigrations, 1) * sizeof(int));

	add_node(g, "initial");
	for (int i = 0; i < nmigrations; i++)
	{
		CHECK_FOR_INTERRUPTS();
		g->from_node[i] = add_node(g, migrations[i].from);
		g->to_node[i] = add_node(g, migrations[i].to);
	}
	build_adjacency(g, true);
	build_adjacency(g, false);
	check_duplicates(g, true);
	check_duplicates(g, false);
	return g;
}

/* node number of a revision, or -1 if the folder does not know it */
int
TrekGraphFind(TrekGraph *g, const char *revision)
{
	TrekNodeEntry *e = trek_nodes_lookup(g->names, revision);

	return e ? e->node : -1;
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
	bool	   *seen = palloc0(g->nnodes * sizeof(bool));
	int			head = 0;
	int			tail = 0;

	for (int n = 0; n < g->nnodes; n++)
		via[n] = -1;
	queue[tail++] = from;
	seen[from] = true;
	while (head < tail)
	{
		int			n = queue[head++];

		CHECK_FOR_INTERRUPTS();
		for (int k = a->start[n]; k < a->start[n + 1]; k++)
		{
			int			e = a->edges[k];
			int			to = g->to_node[e];

			if (!seen[to])
			{
				seen[to] = true;
				via[to] = e;
				queue[tail++] = to;
			}
		}
	}
	pfree(seen);
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
