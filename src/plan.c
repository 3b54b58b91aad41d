/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Making plans, and converting them to and from jsonb.
 *
 * A plan says which migration files take a track from one revision to
 * another, with the SHA-256 of each file.  Plans travel as jsonb, so a plan
 * coming back to trek_execute may have been edited or truncated: every key
 * and type is checked, and the steps must form one chain that matches the
 * file names, before anything is run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <limits.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/varlena.h"

#include "drift.h"
#include "folder.h"
#include "format.h"
#include "graph.h"
#include "history.h"
#include "parse.h"
#include "plan.h"

/* at most this many revision names in a hint */
#define TREK_HINT_NAMES 10

static const char *const direction_names[] = {
	"none", "up", "down", "auto", "stamp"
};

const char *
TrekDirectionName(TrekDirection direction)
{
	return direction_names[direction];
}

/*
 * A track name is stored in every history and runs row of the track: one
 * longer than TREK_MAX_TRACK_LEN bytes is an error.
 */
void
TrekCheckTrackName(const char *track)
{
	size_t		len = strlen(track);

	if (len > TREK_MAX_TRACK_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track name is too long"),
				 errdetail("The name has %zu bytes; a track name has at most %d.",
						   len, TREK_MAX_TRACK_LEN)));
}

/*
 * The direction called name among the first n of direction_names, or -1.
 */
static int
direction_from_name(const char *name, int n)
{
	for (int d = 0; d < n; d++)
		if (strcmp(name, direction_names[d]) == 0)
			return d;
	return -1;
}

/*
 * Append up to TREK_HINT_NAMES quoted revision names to buf.
 */
static void
append_names(StringInfo buf, TrekGraph *g, const int *nodes, int n)
{
	for (int i = 0; i < n && i < TREK_HINT_NAMES; i++)
		appendStringInfo(buf, "%s\"%s\"", i > 0 ? ", " : "",
						 TrekGraphName(g, nodes[i]));
	if (n > TREK_HINT_NAMES)
		appendStringInfo(buf, " and %d more", n - TREK_HINT_NAMES);
	if (n == 0)
		appendStringInfoString(buf, "nothing");
}

static int
resolve_head(TrekGraph *g, const char *dir)
{
	int			nheads;
	int		   *heads = TrekGraphHeads(g, &nheads);
	StringInfoData buf;

	if (nheads == 1)
		return heads[0];

	if (nheads == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" has no head revision", dir),
				 errdetail("Every revision reachable from \"initial\" by up migrations has an up migration of its own, so they form a cycle.")));

	initStringInfo(&buf);
	append_names(&buf, g, heads, nheads);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("migration folder \"%s\" has %d head revisions", dir, nheads),
			 errdetail("Revisions without an up migration: %s.", buf.data),
			 errhint("Name the target revision instead of \"head\", or join the branches with an up migration.")));
	return -1;					/* keep compiler quiet */
}

static int
node_name_cmp(const void *a, const void *b, void *arg)
{
	TrekGraph  *g = arg;

	return strcmp(TrekGraphName(g, *(const int *) a),
				  TrekGraphName(g, *(const int *) b));
}

/*
 * Node of a target revision; an unknown name is an error whose hint lists
 * the closest names the folder knows.
 */
static int
resolve_target(TrekGraph *g, const char *target, const char *dir)
{
	int			node;
	int			tlen = strlen(target);
	int			best = INT_MAX;
	int		   *close;
	int			nclose = 0;
	StringInfoData buf;

	if (strcmp(target, "head") == 0)
		return resolve_head(g, dir);
	if (tlen > TREK_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target revision is too long"),
				 errdetail("The name has %d bytes; a revision name, part of a file name, has at most %d.",
						   tlen, TREK_MAX_NAME_LEN)));
	if (!TrekIsRevisionName(target, tlen))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid target revision \"%s\"", target),
				 errdetail("Revision names are ASCII letters, digits, underscores and dots."),
				 errhint("Use \"head\", \"initial\" or a revision named in the folder's file names.")));
	node = TrekGraphFind(g, target);
	if (node >= 0)
		return node;

	/* closest names by edit distance, ties in name order */
	close = palloc(TrekGraphSize(g) * sizeof(int));
	for (int n = 0; n < TrekGraphSize(g); n++)
	{
		const char *name = TrekGraphName(g, n);
		int			d;

		CHECK_FOR_INTERRUPTS();
		d = varstr_levenshtein_less_equal(target, tlen, name, strlen(name),
										  1, 1, 1, Min(best, Max(3, tlen / 2)),
										  true);
		if (d > Max(3, tlen / 2) || d > best)
			continue;
		if (d < best)
		{
			best = d;
			nclose = 0;
		}
		close[nclose++] = n;
	}
	qsort_arg(close, nclose, sizeof(int), node_name_cmp, g);
	nclose = Min(nclose, TREK_HINT_NAMES);

	initStringInfo(&buf);
	if (nclose > 0)
	{
		appendStringInfoString(&buf, "Perhaps you meant ");
		append_names(&buf, g, close, nclose);
		appendStringInfoString(&buf, ".");
	}
	else
		appendStringInfoString(&buf,
							   "Use \"head\", \"initial\" or a revision named in the folder's file names.");
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("revision \"%s\" does not exist in migration folder \"%s\"",
					target, dir),
			 errhint("%s", buf.data)));
	return -1;					/* keep compiler quiet */
}

/*
 * Node of a revision asked for by name, "head" or "initial" in the graph of
 * canonical folder dir; an unknown name is an error with close names.
 */
int
TrekPlanResolve(TrekGraph *g, const char *revision, const char *dir)
{
	if (strcmp(revision, "initial") == 0)
		return TrekGraphFind(g, "initial");
	return resolve_target(g, revision, dir);
}

static void
no_path(TrekGraph *g, int from, int to, TrekDirection direction)
{
	StringInfoData buf;
	int			n;
	int		   *nodes;

	initStringInfo(&buf);
	nodes = TrekGraphReachable(g, from, true, &n);
	appendStringInfoString(&buf, "Going up from there reaches ");
	append_names(&buf, g, nodes, n);
	nodes = TrekGraphReachable(g, from, false, &n);
	appendStringInfoString(&buf, "; going down reaches ");
	append_names(&buf, g, nodes, n);
	appendStringInfoString(&buf, ".");

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("no path from \"%s\" to \"%s\"%s%s",
					TrekGraphName(g, from), TrekGraphName(g, to),
					direction == TREK_AUTO ? "" : " going ",
					direction == TREK_AUTO ? "" : TrekDirectionName(direction)),
			 errhint("%s", buf.data)));
}

/*
 * N of a relative target "-N" or "+N" (1 <= N <= TREK_PLAN_MAX_STEPS), or
 * 0 for a target that is not relative.
 */
int
TrekPlanRelative(const char *target)
{
	long		n;
	char	   *end;

	if (target[0] != '-' && target[0] != '+')
		return 0;
	errno = 0;
	n = strtol(target + 1, &end, 10);
	if (target[1] < '0' || target[1] > '9' || *end != '\0' || errno != 0 ||
		n < 1 || n > TREK_PLAN_MAX_STEPS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid relative target \"%s\"", target),
				 errdetail("A relative target is \"-N\" (N steps back the way the track came) or \"+N\" (N steps toward head), N from 1 to %d.",
						   TREK_PLAN_MAX_STEPS)));
	return (int) n;
}

/*
 * The steps of "-n": back along trail (the steps in effect on the track,
 * oldest first), newest first, each by the down migration of its up step.
 * Returns the indexes of those migrations.
 */
static int *
path_back(TrekPlan *plan, TrekMigration *migrations, int nmigrations,
		  const TrekTrail *t, int n, const char *dir)
{
	int		   *path = palloc(n * sizeof(int));
	const TrekHistoryRow *trail = t->rows;
	int			ntrail = t->n;

	if (!t->visible)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to go back on track \"%s\"",
						plan->track),
				 errdetail("A target \"-N\" goes back along the track's applied steps, which only roles with the privileges of its owner see."),
				 errhint("Name the target revision.")));

	if (ntrail == 0 || strcmp(trail[ntrail - 1].to, plan->from) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("track \"%s\" has no applied step to go back from revision \"%s\"",
						plan->track, plan->from),
				 errdetail("The track got there by a stamp or from \"initial\", not by an up step trek.history records."),
				 errhint("Name the target revision.")));
	if (n > ntrail)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track \"%s\" cannot go back %d steps", plan->track, n),
				 errdetail("Revision \"%s\" is %d applied steps from where they start, \"%s\".",
						   plan->from, ntrail, trail[0].from),
				 errhint("Use \"-%d\", or name the target revision.", ntrail)));
	for (int k = 0; k < n; k++)
	{
		const TrekHistoryRow *r = &trail[ntrail - 1 - k];
		int			found = -1;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < nmigrations && found < 0; i++)
			if (!migrations[i].up && strcmp(migrations[i].from, r->to) == 0 &&
				strcmp(migrations[i].to, r->from) == 0)
				found = i;
		if (found < 0 && plan->format != TREK_FORMAT_TREK)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("cannot go back from revision \"%s\" to \"%s\": migration folder \"%s\" has no down migration of version \"%s\"",
							r->to, r->from, dir, r->to),
					 errdetail("Step %d of %d back undoes \"%s\" (history id " INT64_FORMAT ").",
							   k + 1, n, r->file, r->id)));
		if (found < 0)
		{
			const char *ext = strrchr(r->file, '.');

			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("cannot go back from revision \"%s\" to \"%s\": migration folder \"%s\" has no \"%.8s_%s_down_%s%s\"",
							r->to, r->from, dir, r->file, r->to, r->from,
							ext ? ext : ".sql"),
					 errdetail("Step %d of %d back undoes \"%s\" (history id " INT64_FORMAT ").",
							   k + 1, n, r->file, r->id),
					 errhint("Add the down migration, or name a target revision that a path of the folder reaches.")));
		}
		path[k] = found;
	}
	return path;
}

/*
 * Fill in step s of plan for migration file of folder: its SHA-256, how it
 * runs, and a sent folder's text.
 */
static void
fill_step(TrekPlan *plan, TrekStep *s, TrekFolder *folder, const char *file,
		  bool up)
{
	if (plan->format == TREK_FORMAT_TREK)
		TrekHashFile(folder, file, s->sha256, &s->no_transaction);
	else
	{
		int			len;
		char	   *text;

		TrekFormatCheckFile(plan->format, folder, file, up);
		text = TrekReadFile(folder, file, &len, s->sha256,
							&s->no_transaction);
		TrekFormatStep(plan->format, folder, file, up, text, len,
					   &s->no_transaction);
		pfree(text);
	}
	if (folder->sent)
		s->text = TrekSentText(folder, file, &s->len);
}

/*
 * Append to plan, going up (or staying), Flyway's repeatable migrations of
 * folder that never ran on the track or changed since they last did, in
 * Flyway's order: each a step from the plan's target to itself.
 */
static void
add_repeatables(TrekPlan *plan, TrekFolder *folder)
{
	TrekHistoryRow *last;
	int			nlast;
	int			n = plan->nsteps;

	if (folder->nrepeatables == 0)
		return;
	last = TrekStateRepeatables(plan->track, &nlast);
	plan->steps = plan->steps == NULL ?
		palloc0((n + folder->nrepeatables) * sizeof(TrekStep)) :
		repalloc(plan->steps, (n + folder->nrepeatables) * sizeof(TrekStep));
	for (int i = 0; i < folder->nrepeatables; i++)
	{
		TrekStep   *s = &plan->steps[n];
		const char *file = folder->repeatables[i];

		CHECK_FOR_INTERRUPTS();
		memset(s, 0, sizeof(TrekStep));
		s->file = (char *) file;
		s->from = plan->to;
		s->to = plan->to;
		fill_step(plan, s, folder, file, true);
		if (TrekRepeatableChanged(last, nlast, file, s->sha256))
			n++;
	}
	if (n > plan->nsteps)
		plan->direction = TREK_UP;
	plan->nsteps = n;
}

/*
 * Plan the shortest way for track from the revision it is at to target in
 * folder dir.  Reads no file but those of the planned steps, writes nothing.
 * trail is what TrekStateTrail() read of the track: the revision it is at,
 * and its steps in effect where needed.  A target "+N" is the first N steps
 * of the way to head; "-N" goes back N steps the way the track came, along
 * those steps.  With trail->check, the files of those steps must be in the
 * folder as they were applied.
 */
TrekPlan *
TrekPlanMake(const TrekFolderRef *where, const char *target,
			 const char *dirname, const char *track, const TrekTrail *trail)
{
	int			relative = TrekPlanRelative(target);
	bool		check;
	TrekPlan   *plan = palloc0(sizeof(TrekPlan));
	TrekMigration *migrations;
	int			nmigrations;
	TrekRevisions *revs;
	TrekGraph  *g;
	int			from;
	int			to;
	int		   *path = NULL;
	int			nsteps = 0;
	bool		up = true;
	int			direction = direction_from_name(dirname, TREK_AUTO + 1);
	TrekFolder *folder;

	if (direction < TREK_UP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid direction \"%s\"", dirname),
				 errhint("Use \"up\", \"down\" or \"auto\".")));

	TrekCheckTrackName(track);
	plan->track = pstrdup(track);
	folder = TrekFolderOpenRef(where);
	plan->dir = folder->path;
	check = trail->check && trail->visible;
	/* at head with nothing to check: another tool's chain is not built */
	migrations = TrekFormatScanAt(folder, &nmigrations, check, &revs,
								  !check && direction != TREK_DOWN &&
								  strcmp(target, "head") == 0 ?
								  trail->current : NULL);
	plan->format = folder->format;
	plan->from = pstrdup(trail->current);
	if (nmigrations < 0)
	{
		plan->to = plan->from;
		plan->direction = TREK_NONE;
		add_repeatables(plan, folder);
		TrekFolderClose(folder);
		return plan;
	}
	g = TrekGraphBuild(migrations, nmigrations, revs);

	from = TrekGraphFind(g, plan->from);
	if (from < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("track \"%s\" is at revision \"%s\", which migration folder \"%s\" does not know",
						track, plan->from, plan->dir),
				 errhint("Check that the folder belongs to this track, and that no migration file was renamed or removed; trek.history shows how the track got there.")));

	if (check)
	{
		int			ndrift;
		TrekDrift  *drift = TrekDriftFind(folder, migrations, nmigrations,
										  trail->rows, trail->n, &ndrift);

		if (ndrift > 0)
			TrekDriftReport(track, plan->dir, NULL, drift, ndrift,
							_("Put the files back as they were applied (trek.history keeps their SHA-256), or plan with trek.check_applied off; trek_status() shows the whole state."));
	}

	if (relative > 0 && target[0] == '-')
	{
		if (direction == TREK_UP)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target \"%s\" goes down, not \"up\"", target)));
		up = false;
		nsteps = relative;
		path = path_back(plan, migrations, nmigrations, trail, relative,
						 plan->dir);
		plan->to = pstrdup(migrations[path[nsteps - 1]].to);
	}
	else
	{
		to = TrekPlanResolve(g, relative > 0 ? "head" : target, plan->dir);
		plan->to = pstrdup(TrekGraphName(g, to));
		if (relative > 0 && direction == TREK_DOWN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target \"%s\" goes toward head, not \"down\"",
							target)));
		if (from == to && relative > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("track \"%s\" is at head \"%s\": there is no step \"%s\"",
							track, plan->to, target)));
		if (from == to)
		{
			plan->direction = TREK_NONE;
			if (direction != TREK_DOWN)
				add_repeatables(plan, folder);
			TrekFolderClose(folder);
			return plan;
		}

		if (direction != TREK_DOWN)
			path = TrekGraphShortestPath(g, from, to, true, &nsteps);
		if (path == NULL && direction != TREK_UP)
		{
			up = false;
			path = TrekGraphShortestPath(g, from, to, false, &nsteps);
		}
		if (path == NULL)
			no_path(g, from, to, direction);
		if (relative > nsteps)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("track \"%s\" is %d steps from head \"%s\", not %d",
							track, nsteps, plan->to, relative),
					 errhint("Use \"+%d\" or \"head\".", nsteps)));
		if (relative > 0)
		{
			nsteps = relative;
			plan->to = pstrdup(migrations[path[nsteps - 1]].to);
		}
	}
	if (nsteps > TREK_PLAN_MAX_STEPS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("plan from \"%s\" to \"%s\" has too many steps",
						plan->from, plan->to),
				 errdetail("It has %d steps; a plan has at most %d.",
						   nsteps, TREK_PLAN_MAX_STEPS),
				 errhint("Migrate to an intermediate revision first.")));

	plan->direction = up ? TREK_UP : TREK_DOWN;
	plan->nsteps = nsteps;
	plan->steps = palloc0(nsteps * sizeof(TrekStep));
	for (int i = 0; i < nsteps; i++)
	{
		TrekMigration *m = &migrations[path[i]];
		TrekStep   *s = &plan->steps[i];

		CHECK_FOR_INTERRUPTS();
		s->file = m->file;
		s->from = m->from;
		s->to = m->to;
		s->python = m->python;
		if (m->code)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("migration \"%s\" is %s code, which only %s can run",
							m->file, "Go", TrekFormatTitle(plan->format)),
					 errdetail("The plan from \"%s\" to \"%s\" reaches it at step %d.",
							   plan->from, plan->to, i + 1),
					 errhint("Apply it with %s, then record where the track is with trek_stamp().",
							 TrekFormatTitle(plan->format))));
		fill_step(plan, s, folder, m->file, up);
		if (s->no_transaction && s->python)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("Python migration \"%s\" cannot run outside a transaction",
							s->file),
					 errdetail("Its first line is the no-transaction marker, which only SQL migrations may have."),
					 errhint("Remove the marker, or put the statements that must run outside a transaction into an SQL migration.")));
	}
	if (up)
		add_repeatables(plan, folder);
	TrekFolderClose(folder);
	return plan;
}

static void
push_string(JsonbParseState **state, JsonbIteratorToken token,
			const char *value)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	(void) pushJsonbValue(state, token, &v);
}

static void
push_pair(JsonbParseState **state, const char *key, const char *value)
{
	push_string(state, WJB_KEY, key);
	push_string(state, WJB_VALUE, value);
}

/*
 * The plan as jsonb, built value by value: no JSON text is printed and
 * parsed again, which is most of the cost for plans of many steps.
 */
Jsonb *
TrekPlanToJsonb(TrekPlan *plan)
{
	JsonbParseState *state = NULL;
	JsonbValue	format;
	JsonbValue *result;
	Jsonb	   *jb;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_string(&state, WJB_KEY, "format");
	format.type = jbvNumeric;
	format.val.numeric = int64_to_numeric(TREK_PLAN_FORMAT);
	(void) pushJsonbValue(&state, WJB_VALUE, &format);
	push_pair(&state, "track", plan->track);
	push_pair(&state, "dir", plan->dir);
	push_pair(&state, "from", plan->from);
	push_pair(&state, "to", plan->to);
	push_pair(&state, "direction", TrekDirectionName(plan->direction));
	if (plan->format != TREK_FORMAT_TREK)
		push_pair(&state, "tool", TrekFormatName(plan->format));
	push_string(&state, WJB_KEY, "steps");
	(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < plan->nsteps; i++)
	{
		TrekStep   *s = &plan->steps[i];

		CHECK_FOR_INTERRUPTS();
		(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		push_pair(&state, "file", s->file);
		push_pair(&state, "from", s->from);
		push_pair(&state, "to", s->to);
		push_pair(&state, "direction", TrekDirectionName(plan->direction));
		push_pair(&state, "sha256", s->sha256);
		if (s->text != NULL)
		{
			JsonbValue	t;

			push_string(&state, WJB_KEY, "text");
			t.type = jbvString;
			t.val.string.val = (char *) s->text;
			t.val.string.len = s->len;
			(void) pushJsonbValue(&state, WJB_VALUE, &t);
		}
		if (s->no_transaction)
		{
			JsonbValue	t;

			push_string(&state, WJB_KEY, "no_transaction");
			t.type = jbvBool;
			t.val.boolean = true;
			(void) pushJsonbValue(&state, WJB_VALUE, &t);
		}
		(void) pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	(void) pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	jb = JsonbValueToJsonb(result);
	if (VARSIZE(jb) > TREK_PLAN_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("plan from \"%s\" to \"%s\" is too large",
						plan->from, plan->to),
				 errdetail("It has %zu bytes as jsonb; a plan has at most %d.",
						   (size_t) VARSIZE(jb), TREK_PLAN_MAX_BYTES),
				 errhint("Migrate to an intermediate revision first.")));
	return jb;
}

/*
 * A plan that trek_plan() did not make: detail is the complete, translated
 * detail (each caller passes one whole format string to it).
 */
static void
malformed(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("malformed trek plan"),
			 errdetail_internal("%s", detail),
			 errhint("Pass the result of trek_plan() to trek_execute() unchanged.")));
}

/* the detail of a malformed plan about key (of step, when step > 0) */
#define MALFORMED_KEY(step, key, top_fmt, step_fmt) \
	malformed((step) > 0 ? psprintf(_(step_fmt), (step), (key)) : \
			  psprintf(_(top_fmt), (key)))

/*
 * The string value of key in an object container; a missing key, a value of
 * another type or one longer than maxlen bytes is an error, found before the
 * value is copied.  step > 0 names the step in the message.
 */
static char *
get_string(JsonbContainer *obj, const char *key, int step, int maxlen)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(obj, key, strlen(key), &v) == NULL)
		MALFORMED_KEY(step, key, "Key \"%s\" is missing.",
					  "In step %d, key \"%s\" is missing.");
	if (v.type != jbvString)
		MALFORMED_KEY(step, key, "Key \"%s\" must be a string.",
					  "In step %d, key \"%s\" must be a string.");
	if (v.val.string.len > maxlen)
		malformed(step > 0 ?
				  psprintf(_("In step %d, key \"%s\" has %d bytes, more than the limit of %d."),
						   step, key, v.val.string.len, maxlen) :
				  psprintf(_("Key \"%s\" has %d bytes, more than the limit of %d."),
						   key, v.val.string.len, maxlen));
	return pnstrdup(v.val.string.val, v.val.string.len);
}

static char *
get_revision(JsonbContainer *obj, const char *key, int step)
{
	char	   *s = get_string(obj, key, step, TREK_MAX_NAME_LEN);

	if (!TrekIsRevisionName(s, strlen(s)))
		MALFORMED_KEY(step, key, "Key \"%s\" is not a revision name.",
					  "In step %d, key \"%s\" is not a revision name.");
	return s;
}

/* was plan made from a folder sent by the client? */
static bool
plan_sent(const TrekPlan *plan)
{
	return strcmp(plan->dir, TREK_SENT_DIR) == 0;
}

static void
check_step(TrekPlan *plan, TrekStep *s, JsonbContainer *obj, int step)
{
	TrekName	name;
	char	   *direction;
	char	   *sha;
	JsonbValue	v;

	s->file = get_string(obj, "file", step, TREK_MAX_NAME_LEN);
	s->from = get_revision(obj, "from", step);
	s->to = get_revision(obj, "to", step);
	direction = get_string(obj, "direction", step, TREK_MAX_NAME_LEN);
	sha = get_string(obj, "sha256", step, TREK_MAX_NAME_LEN);

	if (strcmp(direction, TrekDirectionName(plan->direction)) != 0)
		malformed(psprintf(_("In step %d, direction \"%s\" is not the plan's direction."),
						   step, direction));
	if (strlen(sha) != TREK_SHA256_HEX_LEN ||
		strspn(sha, "0123456789abcdef") != TREK_SHA256_HEX_LEN)
		malformed(psprintf(_("In step %d, key \"%s\" must be 64 lower-case hexadecimal digits."),
						   step, "sha256"));
	memcpy(s->sha256, sha, TREK_SHA256_HEX_LEN + 1);

	/* a sent folder's plan carries each step's text; others carry none */
	if (getKeyJsonValueFromContainer(obj, "text", 4, &v) != NULL)
	{
		if (!plan_sent(plan))
			malformed(psprintf(_("In step %d, key \"%s\" is only in plans of a sent folder."),
							   step, "text"));
		if (v.type != jbvString)
			MALFORMED_KEY(step, "text", "Key \"%s\" must be a string.",
						  "In step %d, key \"%s\" must be a string.");
		s->text = v.val.string.val;
		s->len = v.val.string.len;
	}
	else if (plan_sent(plan))
		MALFORMED_KEY(step, "text", "Key \"%s\" is missing.",
					  "In step %d, key \"%s\" is missing.");

	/* optional: a step outside a transaction */
	if (getKeyJsonValueFromContainer(obj, "no_transaction", 14, &v) != NULL)
	{
		if (v.type != jbvBool)
			malformed(psprintf(_("In step %d, key \"%s\" must be a boolean."),
							   step, "no_transaction"));
		s->no_transaction = v.val.boolean;
	}

	/* another tool's file is the migration of the step's version */
	if (plan->format != TREK_FORMAT_TREK)
	{
		if (!TrekFormatStepFile(plan->format, s->file,
								plan->direction == TREK_UP, s->from, s->to))
			malformed(psprintf(_("In step %d, file \"%s\" is not the migration file of this step."),
							   step, s->file));
		s->python = false;
		return;
	}

	/* the file name is the edge: a plain name in the folder, same revisions */
	if (strchr(s->file, '/') != NULL ||
		TrekParseFileName(s->file, &name) != TREK_NAME_OK ||
		name.up != (plan->direction == TREK_UP) ||
		name.from_len != (int) strlen(s->from) ||
		strncmp(s->file + name.from_start, s->from, name.from_len) != 0 ||
		name.to_len != (int) strlen(s->to) ||
		strncmp(s->file + name.to_start, s->to, name.to_len) != 0)
		malformed(psprintf(_("In step %d, file \"%s\" is not the migration file of this step."),
						   step, s->file));
	s->python = name.python;
}

/* does jb have a key named like a migration file (".sql", ".py")? */
static bool
looks_like_folder(Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int			n;

		if (tok != WJB_KEY)
			continue;
		n = v.val.string.len;
		if ((n > 4 && memcmp(v.val.string.val + n - 4, ".sql", 4) == 0) ||
			(n > 3 && memcmp(v.val.string.val + n - 3, ".py", 3) == 0))
			return true;
	}
	return false;
}

/*
 * Check a plan made by trek_plan and possibly changed since, and unpack it.
 */
TrekPlan *
TrekPlanFromJsonb(Jsonb *jb)
{
	TrekPlan   *plan = palloc0(sizeof(TrekPlan));
	JsonbContainer *root = &jb->root;
	JsonbValue	v;
	JsonbContainer *steps;
	const char *prev;
	char	   *direction;
	int			d;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		malformed(_("The plan is not a JSON object."));
	if (VARSIZE(jb) > TREK_PLAN_MAX_BYTES)
		malformed(psprintf(_("The plan has %zu bytes as jsonb, more than the limit of %d."),
						   (size_t) VARSIZE(jb), TREK_PLAN_MAX_BYTES));

	if (getKeyJsonValueFromContainer(root, "format", 6, &v) == NULL)
	{
		/* a folder passed where a plan goes: say what was probably meant */
		if (looks_like_folder(jb))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("malformed trek plan"),
					 errdetail("Key \"%s\" is missing.", "format"),
					 errhint("A folder sent as jsonb needs a target: trek_plan(folder, 'head'), or CALL trek_migrate(folder, 'head').")));
		malformed(psprintf(_("Key \"%s\" is missing."), "format"));
	}
	if (v.type != jbvNumeric ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq,
										  NumericGetDatum(v.val.numeric),
										  NumericGetDatum(int64_to_numeric(TREK_PLAN_FORMAT)))))
		malformed(psprintf(_("Key \"%s\" must be the number %d."), "format",
						   TREK_PLAN_FORMAT));

	plan->track = get_string(root, "track", 0, TREK_MAX_TRACK_LEN);
	plan->dir = get_string(root, "dir", 0, TREK_MAX_DIR_LEN);
	plan->from = get_revision(root, "from", 0);
	plan->to = get_revision(root, "to", 0);
	direction = get_string(root, "direction", 0, TREK_MAX_NAME_LEN);
	d = direction_from_name(direction, TREK_AUTO);
	if (d < 0)
		malformed(psprintf(_("Direction \"%s\" is not \"up\", \"down\" or \"none\"."),
						   direction));
	plan->direction = d;

	/* optional: the tool whose folder it was made from */
	plan->format = TREK_FORMAT_TREK;
	if (getKeyJsonValueFromContainer(root, "tool", 4, &v) != NULL)
	{
		char	   *tool = get_string(root, "tool", 0, TREK_MAX_NAME_LEN);

		plan->format = TrekFormatFromName(tool);
		if (plan->format == TREK_FORMAT_AUTO || plan->format == TREK_FORMAT_TREK)
			malformed(psprintf(_("Tool \"%s\" is not a tool whose folders trek reads."),
							   tool));
	}

	if (getKeyJsonValueFromContainer(root, "steps", 5, &v) == NULL)
		malformed(psprintf(_("Key \"%s\" is missing."), "steps"));
	if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
		malformed(psprintf(_("Key \"%s\" must be an array."), "steps"));
	steps = v.val.binary.data;
	if (JsonContainerSize(steps) > TREK_PLAN_MAX_STEPS)
		malformed(psprintf(_("Key \"%s\" has %u elements, more than the limit of %d."),
						   "steps", (unsigned) JsonContainerSize(steps),
						   TREK_PLAN_MAX_STEPS));
	plan->nsteps = JsonContainerSize(steps);
	plan->steps = palloc0(Max(plan->nsteps, 1) * sizeof(TrekStep));

	if (plan->direction == TREK_NONE)
	{
		if (plan->nsteps != 0 || strcmp(plan->from, plan->to) != 0)
			malformed(psprintf(_("A plan with direction \"%s\" has no steps and the same \"from\" and \"to\"."),
							   "none"));
		return plan;
	}
	if (plan->nsteps == 0)
		malformed(psprintf(_("A plan with direction \"%s\" needs at least one step."),
						   direction));

	prev = plan->from;
	for (int i = 0; i < plan->nsteps; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(steps, i);
		TrekStep   *s = &plan->steps[i];

		CHECK_FOR_INTERRUPTS();
		if (elem == NULL || elem->type != jbvBinary ||
			!JsonContainerIsObject(elem->val.binary.data))
			malformed(psprintf(_("In step %d, the step is not a JSON object."),
							   i + 1));
		check_step(plan, s, elem->val.binary.data, i + 1);
		if (strcmp(s->from, prev) != 0)
			malformed(psprintf(_("In step %d, key \"from\" is \"%s\", not where the previous step ended."),
							   i + 1, s->from));
		prev = s->to;
	}
	if (strcmp(prev, plan->to) != 0)
		malformed(psprintf(_("The last step ends at \"%s\", not at the plan's \"to\"."),
						   prev));
	return plan;
}
