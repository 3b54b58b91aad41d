/*-------------------------------------------------------------------------
 *
 * drift.c
 *	  Applied migration files compared with a folder.
 *
 * The files judged are those of the steps in effect on a track
 * (TrekHistoryInEffect): a file is gone when the folder no longer lists
 * it, and changed when its SHA-256 differs from the one trek.history
 * recorded when it ran.  trek_status and trek_verify show the result;
 * planning refuses to go on from it unless trek.check_applied is off.
 * Reads the folder's files, nothing else: no SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"

#include "drift.h"

/* at most this many files named in the DETAIL of the error */
#define TREK_DRIFT_FILES 20

static int
migration_file_cmp(const void *key, const void *elem)
{
	return strcmp((const char *) key, ((const TrekMigration *) elem)->file);
}

/*
 * The rows (steps in effect, oldest first) whose files are gone from folder
 * or changed since they ran; sorted is the folder's migrations in file-name
 * order.  Returns *ndrift entries, oldest first.
 */
TrekDrift *
TrekDriftFind(TrekFolder *folder, TrekMigration *sorted, int nmigrations,
			  TrekHistoryRow *rows, int nrows, int *ndrift)
{
	TrekDrift  *drift = palloc(Max(nrows, 1) * sizeof(TrekDrift));

	*ndrift = 0;
	/* one SHA-256 context for every file of a sent folder */
	if (folder->sent && nrows > 0)
		folder->hash = pg_cryptohash_create(PG_SHA256);
	for (int i = 0; i < nrows; i++)
	{
		TrekHistoryRow *r = &rows[i];
		char		sha256[TREK_SHA256_HEX_LEN + 1];
		bool		no_transaction;

		CHECK_FOR_INTERRUPTS();
		if (bsearch(r->file, sorted, nmigrations, sizeof(TrekMigration),
					migration_file_cmp) == NULL)
		{
			drift[*ndrift].row = r;
			drift[(*ndrift)++].missing = true;
			continue;
		}
		TrekHashFile(folder, r->file, sha256, &no_transaction);
		if (strcmp(sha256, r->sha256) != 0)
		{
			drift[*ndrift].row = r;
			drift[(*ndrift)++].missing = false;
		}
	}
	if (folder->hash != NULL)
	{
		pg_cryptohash_free(folder->hash);
		folder->hash = NULL;
	}
	return drift;
}

/*
 * The error of a track whose applied files drifted, or (ndrift == 0) whose
 * revision current folder does not know: the DETAIL names each file with
 * its history id.  hint, if not NULL, replaces the default hint.
 */
void
TrekDriftReport(const char *track, const char *folder, const char *current,
				TrekDrift *drift, int ndrift, const char *hint)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (current != NULL)
		appendStringInfo(&buf, "The track is at revision \"%s\", which the folder does not know.",
						 current);
	for (int i = 0; i < ndrift && i < TREK_DRIFT_FILES; i++)
	{
		TrekDrift  *d = &drift[i];

		if (buf.len > 0)
			appendStringInfoChar(&buf, '\n');
		if (d->missing)
			appendStringInfo(&buf, "File \"%s\" (history id " INT64_FORMAT ") is no longer in the folder.",
							 d->row->file, d->row->id);
		else
			appendStringInfo(&buf, "File \"%s\" (history id " INT64_FORMAT ") changed since it was applied.",
							 d->row->file, d->row->id);
	}
	if (ndrift > TREK_DRIFT_FILES)
		appendStringInfo(&buf, "\nAnd %d more files.",
						 ndrift - TREK_DRIFT_FILES);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 ndrift > 0 ?
			 errmsg_plural("track \"%s\" has %d applied migration file that changed or is gone",
						   "track \"%s\" has %d applied migration files that changed or are gone",
						   ndrift, track, ndrift) :
			 errmsg("track \"%s\" is at a revision that migration folder \"%s\" does not know",
					track, folder),
			 errdetail("%s", buf.data),
			 hint != NULL ? errhint("%s", hint) :
			 ndrift > 0 ?
			 errhint("Put the files back as they were applied (trek.history keeps their SHA-256); trek_status() shows the whole state.") :
			 errhint("Check that the folder belongs to this track, and that no migration file was renamed or removed.")));
}
