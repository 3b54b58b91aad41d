/*-------------------------------------------------------------------------
 *
 * adopt.c
 *	  Adopting a database another tool migrated: trek_adopt().
 *
 * The state table of the folder's tool (golang-migrate's schema_migrations,
 * Flyway's flyway_schema_history, goose's goose_db_version, dbmate's
 * schema_migrations, sqlx's _sqlx_migrations, diesel's
 * __diesel_schema_migrations) says which versions were applied.  When
 * they are the first versions of the folder's chain, each exactly as the
 * folder has it where the tool kept a checksum, trek records one history
 * row per version: direction "stamp", the up file and its SHA-256, and the
 * tool.  A folder of trek's own format is asyncpg-trek's: its migrations
 * table has a row per step taken, up or down, each recorded the same way
 * (a down step as a stamp without file).  Such rows count as applied steps (so
 * trek_verify judges their files, and "-1" goes back by their down files),
 * and nothing runs.  Anything else (a dirty or failed version, a checksum
 * that disagrees, a version missing from the folder, one applied out of
 * order) is refused before anything is written.  The tool's table is only
 * read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/pg_crc.h"

#include "adopt.h"
#include "folder.h"
#include "format.h"
#include "history.h"
#include "state.h"
#include "step.h"

/* where each tool keeps its state, by default */
static const char *
default_table(TrekFormat format)
{
	switch (format)
	{
		case TREK_FORMAT_GOLANG_MIGRATE:
		case TREK_FORMAT_DBMATE:
			return "schema_migrations";
		case TREK_FORMAT_FLYWAY:
			return "flyway_schema_history";
		case TREK_FORMAT_GOOSE:
			return "goose_db_version";
		case TREK_FORMAT_SQLX:
			return "_sqlx_migrations";
		case TREK_FORMAT_DIESEL:
			return "__diesel_schema_migrations";
		default:
			return "public.migrations"; /* asyncpg-trek's */
	}
}

/* one version of the folder's chain, and what the tool's table says of it */
typedef struct Link
{
	TrekMigration *up;			/* its up migration */
	bool		applied;
	const char *checksum;		/* as the tool kept it, or NULL */
} Link;

/* the adoption being worked out */
typedef struct Adoption
{
	TrekFormat	format;
	const char *tool;
	TrekFolder *folder;
	Link	   *chain;			/* the folder's versions, first first */
	int			n;
	TrekRevisions *ids;			/* the chain's versions, numbered */
	int		   *link_of;		/* the link of each number of ids */
	char	   *table;			/* the state table, quoted */
	List	   *repeatables;	/* Flyway: the newest row of each R__ script
								 * it applied, as (script, checksum) pairs */
	StringInfoData problems;	/* why it is not safe to continue */
	int			nproblems;
} Adoption;

static void
			problem(Adoption *a, const char *fmt,...) pg_attribute_printf(2, 3);

static void
problem(Adoption *a, const char *fmt,...)
{
	va_list		args;

	if (a->nproblems++ >= 10)
		return;
	if (a->problems.len > 0)
		appendStringInfoChar(&a->problems, '\n');
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&a->problems, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&a->problems, needed);
	}
}

/* the link of the version the tool's table names, or NULL */
static Link *
find_version(Adoption *a, const char *version)
{
	char	   *id = TrekFormatVersionId(a->format, version);
	int			i = id ? TrekRevisionsFind(a->ids, id, strlen(id)) : -1;

	return i > 0 ? &a->chain[a->link_of[i]] : NULL;
}

/* mark version applied, or note that the folder lacks it */
static Link *
applied(Adoption *a, const char *version)
{
	Link	   *l = find_version(a, version);

	if (l == NULL)
		problem(a, _("Version \"%s\" was applied, but the folder has no migration of it."),
				version);
	else
		l->applied = true;
	return l;
}

static void
reading_context(void *arg)
{
	Adoption   *a = arg;

	errcontext("reading %s as %s's state table", a->table, a->tool);
}

/* run query on the state table; its rows are in SPI_tuptable */
static void
read_table(Adoption *a, const char *columns, const char *order)
{
	char	   *sql = psprintf("SELECT %s FROM %s%s%s", columns, a->table,
							   order ? " ORDER BY " : "", order ? order : "");
	ErrorContextCallback cb;
	int			rc;

	cb.callback = reading_context;
	cb.arg = a;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	rc = SPI_execute(sql, true, 0);
	error_context_stack = cb.previous;

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read %s: %s", a->table,
			 SPI_result_code_string(rc));
}

static char *
value(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * Are the first ncols columns of row set?  A row with a NULL there is not
 * one the tool wrote: a problem, and the row is not read further.
 */
static bool
complete(Adoption *a, int row, int ncols)
{
	for (int col = 1; col <= ncols; col++)
		if (value(row, col) == NULL)
		{
			problem(a, _("Row %d of %s has no %s."), row + 1, a->table,
					SPI_fname(SPI_tuptable->tupdesc, col));
			return false;
		}
	return true;
}

static void
read_golang(Adoption *a)
{
	char	   *dirty;

	read_table(a, "version::pg_catalog.text AS version,"
			   " dirty::pg_catalog.text AS dirty", NULL);
	if (SPI_processed == 0)
		return;
	if (SPI_processed > 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has %llu rows, not the one golang-migrate keeps",
						a->table, (unsigned long long) SPI_processed)));
	if (!complete(a, 0, 2))
		return;
	dirty = value(0, 2);
	if (strcmp(dirty, "true") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("golang-migrate's version %s is dirty", value(0, 1)),
				 errdetail("A migration of it failed part of the way, and %s says so; golang-migrate refuses to continue from there too.",
						   a->table),
				 errhint("Put the database right by hand, record that with golang-migrate's \"force\" command, then adopt it.")));
	/* golang-migrate keeps the newest version: all before it were applied */
	{
		Link	   *l = applied(a, value(0, 1));

		for (Link *p = a->chain; l != NULL && p < l; p++)
			p->applied = true;
	}
}

static void
read_goose(Adoption *a)
{
	int			n;
	char	  **versions;
	bool	   *is_applied;

	read_table(a, "version_id::pg_catalog.text AS version_id,"
			   " is_applied::pg_catalog.text AS is_applied", "id");
	versions = palloc(Max(SPI_processed, 1) * sizeof(char *));
	is_applied = palloc(Max(SPI_processed, 1) * sizeof(bool));
	n = 0;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		if (!complete(a, (int) i, 2))
			continue;
		versions[n] = value(i, 1);
		is_applied[n++] = strcmp(value(i, 2), "true") == 0;
	}
	/* oldest first: goose before 2.6 wrote a row is_applied = false to undo */
	for (int i = 0; i < n; i++)
	{
		Link	   *l;

		if (strcmp(versions[i], "0") == 0)
			continue;
		l = find_version(a, versions[i]);
		if (l != NULL)
			l->applied = is_applied[i];
		else if (is_applied[i])
		{
			bool		undone = false;

			for (int k = i + 1; k < n; k++)
				if (strcmp(versions[k], versions[i]) == 0)
					undone = !is_applied[k];
			if (!undone)
				(void) applied(a, versions[i]);
		}
	}
}

static void
read_versions(Adoption *a, const char *column)
{
	read_table(a, psprintf("%s::pg_catalog.text AS %s", column, column), "1");
	for (uint64 i = 0; i < SPI_processed; i++)
		if (complete(a, (int) i, 1))
			(void) applied(a, value(i, 1));
}

static void
read_sqlx(Adoption *a)
{
	read_table(a, "version::pg_catalog.text AS version,"
			   " success::pg_catalog.text AS success,"
			   " pg_catalog.encode(checksum, 'hex')", "version");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Link	   *l;

		if (!complete(a, (int) i, 2))
			continue;
		l = applied(a, value(i, 1));
		if (strcmp(value(i, 2), "true") != 0)
		{
			problem(a, _("Version %s failed (success is false)."), value(i, 1));
			continue;
		}
		if (l != NULL)
			l->checksum = value(i, 3);
	}
}

static void
read_flyway(Adoption *a)
{
	read_table(a, "type, success::pg_catalog.text AS success, version,"
			   " checksum::pg_catalog.text, COALESCE(script, '')",
			   "installed_rank");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *type;
		char	   *version;
		Link	   *l;

		if (!complete(a, (int) i, 2))
			continue;
		type = value(i, 1);
		version = value(i, 3);
		if (strcmp(value(i, 2), "true") != 0)
		{
			problem(a, _("Migration \"%s\" failed (success is false)."),
					value(i, 5));
			if (version != NULL && (l = find_version(a, version)) != NULL)
				l->applied = true;
			continue;
		}
		if (version == NULL && strcmp(type, "SQL") == 0)
		{
			/* a repeatable's run: the newest one of each script counts */
			a->repeatables = lappend(a->repeatables,
									 list_make2(value(i, 5), value(i, 4)));
			continue;
		}
		if (version == NULL || strcmp(type, "SCHEMA") == 0)
			continue;			/* the schema's creation, deleted runs */
		if (strstr(type, "JDBC") != NULL || strcmp(type, "CUSTOM") == 0)
			continue;			/* Java migrations: not in the folder */
		if (strcmp(type, "DELETE") == 0 || strncmp(type, "UNDO_", 5) == 0)
		{
			if ((l = find_version(a, version)) != NULL)
				l->applied = false;
			continue;
		}
		if (strcmp(type, "BASELINE") == 0 || strcmp(type, "SQL_BASELINE") == 0)
		{
			/* the versions up to the baseline count as applied */
			for (int k = 0; k < a->n; k++)
				if (TrekFormatVersionCmp(a->format, a->chain[k].up->to,
										 version) <= 0)
					a->chain[k].applied = true;
			continue;
		}
		l = applied(a, version);
		if (l != NULL)
			l->checksum = value(i, 4);
	}
}

/*
 * asyncpg-trek: its rows, oldest first, each a step from one revision to
 * another; the steps of the folder they were, in *steps.
 */
static TrekMigration **
read_trek(Adoption *a, TrekMigration *migrations, int nmigrations,
		  int *nsteps)
{
	TrekMigration **steps;
	const char *at = "initial";

	read_table(a, "COALESCE(id::pg_catalog.text, ''), from_revision,"
			   " to_revision", "id");
	steps = palloc(Max(SPI_processed, 1) * sizeof(TrekMigration *));
	*nsteps = 0;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *from = value(i, 2);
		char	   *to = value(i, 3);
		TrekMigration *m = NULL;

		CHECK_FOR_INTERRUPTS();
		if (from == NULL || to == NULL || strcmp(from, at) != 0)
			problem(a, _("Row %s goes from \"%s\", not from \"%s\" where the row before it ended."),
					value(i, 1), from ? from : "NULL", at);
		for (int j = 0; j < nmigrations && m == NULL && from && to; j++)
			if (strcmp(migrations[j].from, from) == 0 &&
				strcmp(migrations[j].to, to) == 0)
				m = &migrations[j];
		if (m == NULL)
			problem(a, _("Row %s goes from \"%s\" to \"%s\", but the folder has no migration between them."),
					value(i, 1), from ? from : "NULL", to ? to : "NULL");
		else
			steps[(*nsteps)++] = m;
		at = to ? to : at;
	}
	return steps;
}

/* the checksum the tool would compute of file, as it keeps it */
static char *
tool_checksum(Adoption *a, const char *file)
{
	int			len;
	char	   *text = TrekReadText(a->folder, file, &len);

	if (a->format == TREK_FORMAT_SQLX)
	{
		pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA384);
		uint8		digest[PG_SHA384_DIGEST_LENGTH];
		char	   *hex = palloc(2 * PG_SHA384_DIGEST_LENGTH + 1);

		if (pg_cryptohash_init(ctx) < 0 ||
			pg_cryptohash_update(ctx, (uint8 *) text, len) < 0 ||
			pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
			elog(ERROR, "could not compute SHA-384: %s",
				 pg_cryptohash_error(ctx));
		pg_cryptohash_free(ctx);
		hex_encode((char *) digest, sizeof(digest), hex);
		hex[2 * PG_SHA384_DIGEST_LENGTH] = '\0';
		return hex;
	}
	else
	{
		/* Flyway: CRC-32 of the text without a BOM and line breaks */
		pg_crc32	crc;
		int			start = 0;

		if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
			start = 3;
		INIT_TRADITIONAL_CRC32(crc);
		for (int i = start; i < len; i++)
			if (text[i] != '\r' && text[i] != '\n')
				COMP_TRADITIONAL_CRC32(crc, text + i, 1);
		FIN_TRADITIONAL_CRC32(crc);
		return psprintf("%d", (int32) crc);
	}
}

/*
 * Flyway: record the repeatable scripts of the folder whose newest run (in
 * flyway_schema_history) was of the file as it is now, so that trek runs
 * them again only when they change, as Flyway would; at revision.
 */
static void
record_repeatables(Adoption *a, const char *track, const char *revision,
				   bool owned)
{
	for (int i = 0; i < a->folder->nrepeatables; i++)
	{
		const char *file = a->folder->repeatables[i];
		const char *checksum = NULL;
		ListCell   *lc;

		foreach(lc, a->repeatables)
		{
			List	   *run = lfirst(lc);

			if (strcmp(linitial(run), file) == 0)
				checksum = lsecond(run);	/* rows come oldest first */
		}
		if (checksum != NULL && strcmp(tool_checksum(a, file), checksum) == 0)
		{
			char		sha256[TREK_SHA256_HEX_LEN + 1];
			bool		marker;

			TrekHashFile(a->folder, file, sha256, &marker);
			TrekStateStampFile(track, a->folder->path, revision, revision,
							   file, sha256, TrekFormatName(a->format), owned);
			owned = true;
		}
	}
}

/* does the caller see a table of that name (on the search path)? */
static bool
table_exists(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;

	args[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args("SELECT pg_catalog.to_regclass($1)", 1, argtypes,
							  args, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not look up %s", name);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						 &isnull);
	return !isnull;
}

/* the state table, resolved as the caller would name it */
static char *
resolve_table(Adoption *a, const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	Oid			relid;
	int			rc;

	args[0] = CStringGetTextDatum(name);
	rc = SPI_execute_with_args("SELECT pg_catalog.to_regclass($1)::pg_catalog.oid",
							   1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look up %s", name);
	relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%s's table \"%s\" does not exist", a->tool, name),
				 errdetail("trek_adopt() reads which versions %s applied from it.",
						   a->tool),
				 errhint("Name the table, with its schema, as trek_adopt()'s argument state_table.")));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * Adopt the database of the tool whose folder where is: record what its
 * state table says was applied on track, and return the revision.
 */
char *
TrekAdopt(const TrekFolderRef *where, const char *track,
		  const char *state_table)
{
	MemoryContext callercxt = CurrentMemoryContext;
	Adoption	a;
	TrekMigration *migrations;
	int			nmigrations;
	TrekRevisions *revs;
	int		   *next;
	int			nrevs;
	int			k = 0;
	int			cur;
	char	   *current;
	char	   *revision = "initial";
	TrekTrackLock lock;
	bool		owned;
	Oid			owner;
	TrekMigration **steps = NULL;

	TrekPreventIfReadOnly("trek_adopt()", "adopt a database", "the adoption");
	if (TrekExecuting())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trek_adopt() cannot be called from inside a migration")));

	memset(&a, 0, sizeof(a));
	initStringInfo(&a.problems);
	a.folder = TrekFolderOpenRef(where);
	migrations = TrekFormatScan(a.folder, &nmigrations, false, &revs);
	a.format = a.folder->format;
	a.tool = TrekFormatTitle(a.format);

	/* the chain: from "initial", each version's up migration */
	(void) TrekRevisionsNames(revs, &nrevs);
	next = palloc(nrevs * sizeof(int));
	for (int i = 0; i < nrevs; i++)
		next[i] = -1;
	for (int i = 0; i < nmigrations; i++)
		if (migrations[i].up)
			next[migrations[i].from_rev] = i;
	a.chain = palloc(Max(nrevs, 1) * sizeof(Link));
	a.ids = TrekRevisionsCreate(nrevs);
	a.link_of = palloc((nrevs + 1) * sizeof(int));
	for (cur = 0; a.format != TREK_FORMAT_TREK && next[cur] >= 0 &&
		 a.n < nrevs; cur = migrations[next[cur]].to_rev)
	{
		char	   *id = TrekFormatVersionId(a.format, migrations[next[cur]].to);

		if (id == NULL)			/* the chain's versions are the tool's */
			elog(ERROR, "version \"%s\" of the chain is none of %s",
				 migrations[next[cur]].to, a.tool);
		a.link_of[TrekRevisionsAdd(a.ids, id, strlen(id))] = a.n;
		a.chain[a.n].up = &migrations[next[cur]];
		a.chain[a.n].applied = false;
		a.chain[a.n++].checksum = NULL;
	}

	if (a.format == TREK_FORMAT_TREK)
		a.tool = "asyncpg-trek";
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * golang-migrate and sqlx name up and down files alike, and their
	 * versions are the same numbers: a folder recognised as golang-migrate's
	 * is sqlx's where only sqlx's table is there.
	 */
	if (a.format == TREK_FORMAT_GOLANG_MIGRATE && state_table == NULL &&
		TrekFormatSetting == TREK_FORMAT_AUTO &&
		!table_exists("schema_migrations") && table_exists("_sqlx_migrations"))
	{
		a.format = TREK_FORMAT_SQLX;
		a.tool = TrekFormatTitle(a.format);
	}
	a.table = resolve_table(&a, state_table ? state_table :
							default_table(a.format));
	switch (a.format)
	{
		case TREK_FORMAT_GOLANG_MIGRATE:
			read_golang(&a);
			break;
		case TREK_FORMAT_GOOSE:
			read_goose(&a);
			break;
		case TREK_FORMAT_DBMATE:
			read_versions(&a, "version");
			break;
		case TREK_FORMAT_DIESEL:
			read_versions(&a, "version");
			break;
		case TREK_FORMAT_SQLX:
			read_sqlx(&a);
			break;
		case TREK_FORMAT_FLYWAY:
			read_flyway(&a);
			break;
		default:
			steps = read_trek(&a, migrations, nmigrations, &k);
			break;
	}

	/* the versions applied must be the first of the chain, as the files are */
	if (a.format != TREK_FORMAT_TREK)
	{
		for (k = 0; k < a.n && a.chain[k].applied; k++)
			;
		for (int i = k; i < a.n; i++)
			if (a.chain[i].applied)
				problem(&a, _("Version \"%s\" was applied, but \"%s\" before it was not."),
						a.chain[i].up->to, a.chain[k].up->to);
		steps = palloc(Max(k, 1) * sizeof(TrekMigration *));
		for (int i = 0; i < k; i++)
		{
			Link	   *l = &a.chain[i];

			CHECK_FOR_INTERRUPTS();
			steps[i] = l->up;
			if (l->checksum != NULL &&
				strcmp(tool_checksum(&a, l->up->file), l->checksum) != 0)
				problem(&a, _("File \"%s\" changed since %s applied it (checksum %s in %s)."),
						l->up->file, a.tool, l->checksum, a.table);
		}
	}
	if (a.nproblems > 0)
	{
		if (a.nproblems > 10)
			appendStringInfo(&a.problems, _("\nAnd %d more."), a.nproblems - 10);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot adopt what %s applied: %s does not match migration folder \"%s\"",
						a.tool, a.table, a.folder->path),
				 errdetail("%s", a.problems.data),
				 errhint("Bring the folder and the database in line with %s itself, then adopt the database.",
						 a.tool)));
	}

	/* nothing applied yet: nothing to record */
	TrekStateLock(track, &lock, false);
	current = TrekStateRead(track, &owned, &owner, callercxt);
	TrekStateCheckOwner(track, owned, owner, "adopt");
	if (strcmp(current, "initial") != 0 || owned)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("track \"%s\" already has a history", track),
				 errdetail("It is at revision \"%s\"; trek_adopt() starts a track.",
						   current),
				 errhint("Adopt into another track (its argument track), or stamp this one with trek_stamp().")));
	for (int i = 0; i < k; i++)
	{
		TrekMigration *m = steps[i];
		char		sha256[TREK_SHA256_HEX_LEN + 1];
		bool		marker;

		/* an up step is recorded with its file; a down one pops it */
		CHECK_FOR_INTERRUPTS();
		if (m->up)
			TrekHashFile(a.folder, m->file, sha256, &marker);
		TrekStateStampFile(track, a.folder->path, m->from, m->to,
						   m->up ? m->file : NULL, m->up ? sha256 : NULL,
						   a.format == TREK_FORMAT_TREK ? "asyncpg-trek" :
						   TrekFormatName(a.format), owned || i > 0);
		revision = m->to;
	}
	record_repeatables(&a, track, revision, owned || k > 0);
	SPI_finish();
	TrekFolderClose(a.folder);

	ereport(NOTICE,
			(errmsg("adopted track \"%s\" at revision \"%s\": %d steps %s applied, recorded from %s; no migration ran",
					track, revision, k, a.tool, a.table)));
	return pstrdup(revision);
}
