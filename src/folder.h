/*-------------------------------------------------------------------------
 *
 * folder.h
 *	  Opening migration folders, collecting their migrations and reading
 *	  their files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_FOLDER_H
#define TREK_FOLDER_H

#include "common/cryptohash.h"
#include "nodes/pg_list.h"

#include "names.h"
#include "types.h"



/* one file of a folder sent by the client */
typedef struct TrekSentFile
{
	char	   *name;			/* "a.sql", or "sub/b.sql" in a subfolder */
	const char *text;			/* len bytes, not NUL-terminated */
	int			len;
} TrekSentFile;

/* an entry of a folder that may be another tool's migration (format.c) */
typedef struct TrekForeignEntry
{
	char	   *name;			/* "a.sql", or "dir" / "dir/up.sql" (diesel) */
	bool		dir;			/* a folder (diesel's) */
	bool		near_miss;		/* breaks trek's own grammar, so warned about
								 * in a folder of trek's format */
	int16		len;			/* of name */
	int8		family;			/* format.c's kind of name, once known */
} TrekForeignEntry;

/*
 * A migration folder opened and checked for the current user: a folder on
 * the server (fd), or one sent by the client (files; path is TREK_SENT_DIR).
 */
typedef struct TrekFolder
{
	char	   *path;			/* canonical path of the opened folder */
	int			fd;				/* its descriptor (fd.c's), or -1 */
	bool		confined;		/* user limited to trek.allowed_directories */
	List	   *roots;			/* the allowed folders, resolved (confined) */
	bool		sent;			/* sent by the client: no file is opened */
	TrekSentFile *files;		/* its files, sorted by name */
	int			nfiles;
	pg_cryptohash_ctx *hash;	/* SHA-256 for many sent files, or NULL */
	TrekFormat	format;			/* its format, once scanned */
	TrekForeignEntry *foreign;	/* entries that may be another tool's */
	int			nforeign;
	char	  **repeatables;	/* Flyway's R__ scripts, in Flyway's order */
	int			nrepeatables;
	char	  **companions;		/* Flyway's .conf files, sorted */
	int			ncompanions;
} TrekFolder;


extern TrekFolder *TrekFolderOpen(const char *dir);
extern TrekFolder *TrekFolderOpenRef(const TrekFolderRef *ref);
extern TrekFolder *TrekFolderOfPlan(const TrekPlan *plan);
extern void TrekFolderClose(TrekFolder *f);
extern TrekMigration *TrekScanFolder(TrekFolder *f, int *nmigrations,
									 bool sorted, TrekRevisions **revs);
extern void TrekHashFile(TrekFolder *f, const char *file, char *sha256,
						 bool *no_transaction);
extern bool TrekFolderHas(TrekFolder *f, const char *name);
extern const char *TrekSentText(TrekFolder *f, const char *file, int *len);
extern char *TrekReadText(TrekFolder *f, const char *file, int *len);
extern char *TrekReadFile(TrekFolder *f, const char *file, int *len,
						  char *sha256, bool *no_transaction);

#endif							/* TREK_FOLDER_H */
