/*-------------------------------------------------------------------------
 *
 * ops.c
 *	  Operating a track: its status, verification, stamps and the picture
 *	  of its folder.
 *
 * Drift is judged on the files "in effect" (history.c): the up steps that
 * brought the track where it is and were not undone since.  Down files are
 * not judged: what they did is an absence.
 *
 * What was applied on a track is judged only for roles that may see it
 * (TrekGuardMaySeeTrack): a file's name, or whether a file of the caller's
 * own matches one that was applied, is another tenant's secret.  Others
 * get what planning tells anyway: where the track is, and how far head is.
 *
 * Longer than most rooms: four SQL functions that share the survey of a
 * track against its folder.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "drift.h"
#include "step.h"
#include "folder.h"
#include "format.h"
#include "graph.h"
#include "guard.h"
#include "ops.h"
#include "plan.h"
#include "runs.h"
#include "history.h"
#include "runrows.h"
#include "state.h"

/* what a survey of a track and its folder found */
typedef struct TrekSurvey
{
	const char *track;
	TrekFolder *folder;
	TrekMigration *migrations;
	int			nmigrations;
	TrekGraph  *graph;
	char	   *current;		/* the revision the track is at */
	int			current_node;	/* its node, or -1 if the folder lacks it */
	bool		visible;		/* may the caller see what was applied? */
	Oid			owner;			/* its owner, if it has one */
	char	   *last_run;		/* state of the newest run, or NULL */
	TrekDrift  *drift;
	int			ndrift;
	int			nrepeatables;	/* Flyway's, to run again or for the first
								 * time */
} TrekSurvey;

/*
 * Open folder dir, read track's state and, if the caller may see what was
 * applied on the track, compare the files in effect with the folder:
 * missing names from the listing, changed contents by SHA-256.  For a
 * track the caller may not see, nothing is compared, nothing is hashed and
 * the last run is not read: only the revision it is at is known.
 */
static void
survey(TrekSurvey *s, const TrekFolderRef *where, const char *track)
{
	MemoryContext callercxt = CurrentMemoryContext;
	TrekTrail  *trail;
	TrekRevisions *revs;

	memset(s, 0, sizeof(TrekSurvey));
	s->track = track;
	s->folder = TrekFolderOpenRef(where);
	s->migrations = TrekFormatScan(s->folder, &s->nmigrations, true,
								   &revs);
	s->graph = TrekGraphBuild(s->migrations, s->nmigrations, revs);

	trail = TrekStateTrail(track, NULL);
	s->owner = trail->owner;
	s->visible = trail->visible;
	s->current = trail->current;
	s->current_node = TrekGraphFind(s->graph, s->current);
	if (!s->visible)
	{
		TrekFolderClose(s->folder);
		return;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	s->last_run = TrekRunsLast(track, callercxt);
	SPI_finish();
	s->drift = TrekDriftFind(s->folder, s->migrations, s->nmigrations,
							 trail->rows, trail->n, &s->ndrift);
	if (s->folder->nrepeatables > 0)
	{
		int			nlast;
		TrekHistoryRow *last = TrekStateRepeatables(track, &nlast);

		for (int i = 0; i < s->folder->nrepeatables; i++)
		{
			char		sha256[TREK_SHA256_HEX_LEN + 1];
			bool		marker;

			TrekHashFile(s->folder, s->folder->repeatables[i], sha256, &marker);
			s->nrepeatables += TrekRepeatableChanged(last, nlast,
													 s->folder->repeatables[i],
													 sha256);
		}
	}
	TrekFolderClose(s->folder);
}

static Datum
drift_files(TrekSurvey *s, bool missing)
{
	Datum	   *elems = palloc(Max(s->ndrift, 1) * sizeof(Datum));
	int			n = 0;

	for (int i = 0; i < s->ndrift; i++)
		if (s->drift[i].missing == missing)
			elems[n++] = CStringGetTextDatum(s->drift[i].row->file);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * One row about track and folder dir, put in fcinfo's result set: track,
 * current revision, whether the folder knows it, head, steps to head,
 * changed files, missing files, the last run's state and a note on what
 * keeps the track from reaching head.  Nothing in it is an error: a folder
 * that cannot be read is.  For a track the caller may not see, the files
 * and the last run are NULL, and the note says why.
 */
void
TrekOpsStatus(FunctionCallInfo fcinfo, const TrekFolderRef *where,
			  const char *track)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TrekSurvey	s;
	Datum		values[9];
	bool		nulls[9];
	int			nheads;
	int		   *heads;
	int			head = -1;
	char	   *note = NULL;

	InitMaterializedSRF(fcinfo, 0);
	survey(&s, where, track);

	heads = TrekGraphHeads(s.graph, &nheads);
	if (nheads == 1)
		head = heads[0];
	else if (nheads == 0)
		note = "the folder has no head revision: its up migrations form a cycle";
	else
		note = psprintf("the folder has %d head revisions", nheads);

	memset(nulls, false, sizeof(nulls));
	values[0] = CStringGetTextDatum(track);
	values[1] = CStringGetTextDatum(s.current);
	values[2] = BoolGetDatum(s.current_node >= 0);
	if (head >= 0)
		values[3] = CStringGetTextDatum(TrekGraphName(s.graph, head));
	else
		nulls[3] = true;
	nulls[4] = true;
	if (s.current_node < 0)
		note = psprintf("revision \"%s\" is not in the folder", s.current);
	else if (head >= 0)
	{
		int			nsteps = 0;
		int		   *path = NULL;

		if (head != s.current_node)
		{
			path = TrekGraphShortestPath(s.graph, s.current_node, head, true,
										 &nsteps);
			if (path == NULL)
				path = TrekGraphShortestPath(s.graph, s.current_node, head,
											 false, &nsteps);
		}
		/* what only the folder's own tool can run (goose's Go files) */
		for (int i = 0; path != NULL && i < nsteps && note == NULL; i++)
		{
			TrekMigration *m = &s.migrations[path[i]];

			if (m->code)
				note = psprintf("migration \"%s\" on the way to head is %s code, which only %s can run",
								m->file, "Go", TrekFormatTitle(s.folder->format));
		}
		if (head == s.current_node || path != NULL)
		{
			values[4] = Int32GetDatum(nsteps);
			nulls[4] = false;
		}
		else
			note = psprintf("no path from \"%s\" to head \"%s\"", s.current,
							TrekGraphName(s.graph, head));
	}
	if (!s.visible)
	{
		nulls[5] = nulls[6] = true;
		note = "only roles with the privileges of the track's owner see its applied files";
	}
	else
	{
		values[5] = drift_files(&s, false);
		values[6] = drift_files(&s, true);
	}
	if (note == NULL && s.nrepeatables > 0)
		note = psprintf(ngettext("%d repeatable migration to run, new or changed",
								 "%d repeatable migrations to run, new or changed",
								 s.nrepeatables), s.nrepeatables);
	if (s.last_run != NULL)
		values[7] = CStringGetTextDatum(s.last_run);
	else
		nulls[7] = true;
	if (note != NULL)
		values[8] = CStringGetTextDatum(note);
	else
		nulls[8] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Nothing if every file in effect on track is in folder dir as it was
 * applied and the folder knows the track's revision; else an error whose
 * DETAIL names each file with its history id.  A track the caller may not
 * see is an error of its own, which tells nothing of either.
 */
void
TrekOpsVerify(const TrekFolderRef *where, const char *track)
{
	TrekSurvey	s;

	survey(&s, where, track);
	if (!s.visible)
	{
		char	   *name = GetUserNameFromId(s.owner, true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to verify track \"%s\"", track),
				 name != NULL ?
				 errdetail("Track \"%s\" belongs to role \"%s\".", track, name) :
				 errdetail("Track \"%s\" belongs to a role that no longer exists (OID %u).",
						   track, s.owner),
				 errhint("Only roles with the privileges of the track's owner, and superusers, may verify it.")));
	}
	if (s.ndrift == 0 && s.current_node >= 0)
		return;
	TrekDriftReport(track, s.folder->path,
					s.current_node < 0 ? s.current : NULL, s.drift, s.ndrift,
					NULL);
}

/*
 * Record that track is at revision (a name, "head" or "initial" of folder
 * dir) without running any migration; returns the revision.  Takes the
 * track lock and follows the owner rules of trek_execute().
 */
char *
TrekOpsStamp(const TrekFolderRef *where, const char *revision,
			 const char *track)
{
	MemoryContext callercxt = CurrentMemoryContext;
	TrekFolder *folder;
	TrekMigration *migrations;
	int			nmigrations;
	TrekGraph  *g;
	TrekRevisions *revs;
	char	   *to;
	char	   *current;
	TrekTrackLock lock;
	bool		owned;
	Oid			owner;

	TrekPreventIfReadOnly("trek_stamp()", "stamp a track", "the stamp");
	if (TrekExecuting())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_stamp() cannot be called from inside a migration"),
				 errhint("Stamp the track before or after the run.")));

	folder = TrekFolderOpenRef(where);
	migrations = TrekFormatScan(folder, &nmigrations, false, &revs);
	g = TrekGraphBuild(migrations, nmigrations, revs);
	to = pstrdup(TrekGraphName(g, TrekPlanResolve(g, revision, folder->path)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	TrekStateLock(track, &lock, false);
	current = TrekStateRead(track, &owned, &owner, callercxt);
	TrekStateCheckOwner(track, owned, owner, "stamp");
	TrekStateStamp(track, folder->path, current, to, owned);
	SPI_finish();
	TrekFolderClose(folder);

	ereport(NOTICE,
			(errmsg("stamped track \"%s\" at revision \"%s\" (was \"%s\"); no migration ran",
					track, to, current)));
	return to;
}

/* ---- pictures ---- */

typedef enum TrekGraphFormat
{
	TREK_MERMAID,
	TREK_DOT
} TrekGraphFormat;

/* marks of a node */
#define MARK_INITIAL	0x1
#define MARK_HEAD		0x2
#define MARK_CURRENT	0x4
#define MARK_UNKNOWN	0x8		/* the track's revision, not in the folder */

/* a node of the picture */
typedef struct TrekPicNode
{
	const char *name;
	int			marks;
} TrekPicNode;

static int
pic_node_cmp(const void *a, const void *b)
{
	return strcmp(((const TrekPicNode *) a)->name,
				  ((const TrekPicNode *) b)->name);
}

static int
pic_node_find(TrekPicNode *nodes, int n, const char *name)
{
	TrekPicNode key;
	TrekPicNode *found;

	key.name = name;
	found = bsearch(&key, nodes, n, sizeof(TrekPicNode), pic_node_cmp);
	return found ? (int) (found - nodes) : -1;
}

/*
 * Text for a Mermaid label: letters, digits and a few plain signs as they
 * are, everything else as an entity code (#35; is "#"), so that no label
 * can end the label or the statement.
 */
static void
mermaid_text(StringInfo buf, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || strchr("_.-,() ", *p) != NULL)
			appendStringInfoChar(buf, *p);
		else
			appendStringInfo(buf, "#%d;", *p);
	}
}

/* text for a Graphviz double-quoted string */
static void
dot_text(StringInfo buf, const char *s)
{
	for (const char *p = s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		if (*p == '\n')
			appendStringInfoString(buf, "\\n");
		else
			appendStringInfoChar(buf, *p);
	}
}

/* "rev3 (head, current)": a node's name and what it is */
static char *
node_label(TrekPicNode *node, const char *sep)
{
	StringInfoData buf;
	int			n = 0;

	initStringInfo(&buf);
	appendStringInfoString(&buf, node->name);
	if (node->marks & (MARK_HEAD | MARK_CURRENT))
	{
		appendStringInfo(&buf, "%s(", sep);
		if (node->marks & MARK_HEAD)
			appendStringInfo(&buf, "%shead", n++ ? ", " : "");
		if (node->marks & MARK_CURRENT)
			appendStringInfo(&buf, "%scurrent%s", n++ ? ", " : "",
							 (node->marks & MARK_UNKNOWN) ? ", not in folder" : "");
		appendStringInfoChar(&buf, ')');
	}
	return buf.data;
}

static void
mermaid_graph(StringInfo out, TrekPicNode *nodes, int nnodes,
			  TrekMigration *migrations, int nmigrations)
{
	appendStringInfoString(out, "flowchart TD\n");
	for (int i = 0; i < nnodes; i++)
	{
		appendStringInfo(out, "    n%d[\"", i);
		mermaid_text(out, node_label(&nodes[i], " "));
		appendStringInfoString(out, "\"]\n");
	}
	for (int i = 0; i < nmigrations; i++)
	{
		TrekMigration *m = &migrations[i];

		CHECK_FOR_INTERRUPTS();
		appendStringInfo(out, "    n%d %s|\"",
						 pic_node_find(nodes, nnodes, m->from),
						 m->up ? "-->" : "-.->");
		mermaid_text(out, m->file);
		appendStringInfo(out, "\"| n%d\n", pic_node_find(nodes, nnodes, m->to));
	}
	appendStringInfoString(out,
						   "    classDef initial stroke-width:3px\n"
						   "    classDef head stroke-width:3px,stroke-dasharray:0\n"
						   "    classDef current fill:#cde4ff\n"
						   "    classDef unknown fill:#ffd6d6,stroke-dasharray:4 2\n");
	for (int i = 0; i < nnodes; i++)
	{
		if (nodes[i].marks & MARK_INITIAL)
			appendStringInfo(out, "    class n%d initial\n", i);
		if (nodes[i].marks & MARK_HEAD)
			appendStringInfo(out, "    class n%d head\n", i);
		if (nodes[i].marks & MARK_CURRENT)
			appendStringInfo(out, "    class n%d %s\n", i,
							 (nodes[i].marks & MARK_UNKNOWN) ? "unknown" : "current");
	}
}

static void
dot_graph(StringInfo out, TrekPicNode *nodes, int nnodes,
		  TrekMigration *migrations, int nmigrations)
{
	appendStringInfoString(out,
						   "digraph trek {\n"
						   "    rankdir=TB;\n"
						   "    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
						   "    edge [fontname=\"Helvetica\", fontsize=10];\n");
	for (int i = 0; i < nnodes; i++)
	{
		TrekPicNode *n = &nodes[i];

		appendStringInfoString(out, "    \"");
		dot_text(out, n->name);
		appendStringInfoString(out, "\" [label=\"");
		dot_text(out, node_label(n, "\n"));
		appendStringInfoChar(out, '"');
		if (n->marks & MARK_INITIAL)
			appendStringInfoString(out, ", shape=oval");
		if (n->marks & MARK_HEAD)
			appendStringInfoString(out, ", peripheries=2");
		if (n->marks & MARK_UNKNOWN)
			appendStringInfoString(out, ", style=\"rounded,filled,dashed\", fillcolor=\"#ffd6d6\"");
		else if (n->marks & MARK_CURRENT)
			appendStringInfoString(out, ", style=\"rounded,filled\", fillcolor=\"#cde4ff\"");
		appendStringInfoString(out, "];\n");
	}
	for (int i = 0; i < nmigrations; i++)
	{
		TrekMigration *m = &migrations[i];

		CHECK_FOR_INTERRUPTS();
		appendStringInfoString(out, "    \"");
		dot_text(out, m->from);
		appendStringInfoString(out, "\" -> \"");
		dot_text(out, m->to);
		appendStringInfoString(out, "\" [label=\"");
		dot_text(out, m->file);
		appendStringInfoChar(out, '"');
		if (!m->up)
			appendStringInfoString(out, ", style=dashed");
		appendStringInfoString(out, "];\n");
	}
	appendStringInfoString(out, "}\n");
}

/*
 * The revision graph of folder dir as Mermaid or Graphviz text: every
 * revision a node, every file an edge labelled with its name, down edges
 * dashed; "initial", the head(s) and the track's revision marked.  Nodes
 * come in name order and edges in file-name order, so the same folder and
 * state always give the same text.
 */
char *
TrekOpsGraph(const TrekFolderRef *where, const char *formatname,
			 const char *track)
{
	TrekFolder *folder;
	TrekMigration *migrations;
	int			nmigrations;
	TrekRevisions *revs;
	TrekGraph  *g;
	TrekGraphFormat format;
	TrekPicNode *nodes;
	int			nnodes;
	int		   *heads;
	int			nheads;
	char	   *current;
	int			cur;
	StringInfoData out;

	if (strcmp(formatname, "mermaid") == 0)
		format = TREK_MERMAID;
	else if (strcmp(formatname, "dot") == 0)
		format = TREK_DOT;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid graph format \"%s\"", formatname),
				 errhint("Use \"mermaid\" or \"dot\".")));

	folder = TrekFolderOpenRef(where);
	migrations = TrekFormatScan(folder, &nmigrations, true, &revs);
	TrekFolderClose(folder);
	g = TrekGraphBuild(migrations, nmigrations, revs);
	current = TrekStateCurrent(track);

	nnodes = TrekGraphSize(g);
	nodes = palloc0((nnodes + 1) * sizeof(TrekPicNode));
	for (int i = 0; i < nnodes; i++)
		nodes[i].name = TrekGraphName(g, i);
	heads = TrekGraphHeads(g, &nheads);
	for (int i = 0; i < nheads; i++)
		nodes[heads[i]].marks |= MARK_HEAD;
	nodes[TrekGraphFind(g, "initial")].marks |= MARK_INITIAL;
	cur = TrekGraphFind(g, current);
	if (cur >= 0)
		nodes[cur].marks |= MARK_CURRENT;
	else
	{
		nodes[nnodes].name = current;
		nodes[nnodes++].marks = MARK_CURRENT | MARK_UNKNOWN;
	}
	qsort(nodes, nnodes, sizeof(TrekPicNode), pic_node_cmp);

	initStringInfo(&out);
	if (format == TREK_MERMAID)
		mermaid_graph(&out, nodes, nnodes, migrations, nmigrations);
	else
		dot_graph(&out, nodes, nnodes, migrations, nmigrations);
	return out.data;
}
