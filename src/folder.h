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

#include "nodes/pg_list.h"

#define TREK_SHA256_HEX_LEN 64

/* the revision names of a folder, numbered (graph.c) */
typedef struct TrekRevisions TrekRevisions;

typedef struct TrekMigration
{
	char	   *file;			/* base name */
	char	   *from;
	char	   *to;
	int			from_rev;		/* numbers of from and to in the scan's */
	int			to_rev;			/* TrekRevisions */
	bool		up;
	bool		python;
} TrekMigration;

/* a migration folder opened and checked for the current user */
typedef struct TrekFolder
{
	char	   *path;			/* canonical path of the opened folder */
	int			fd;				/* its descriptor (fd.c's), or -1 */
	bool		confined;		/* user limited to trek.allowed_directories */
	List	   *roots;			/* the allowed folders, resolved (confined) */
} TrekFolder;

/*
 * Strings copied into blocks of their own: ten thousand names take ten
 * allocations rather than ten thousand, with no chunk header each.
 */
typedef struct TrekStrings
{
	char	   *free;			/* free space of the current block */
	size_t		left;
} TrekStrings;

extern char *TrekStringsCopy(TrekStrings *strings, const char *s, size_t len);

extern TrekFolder *TrekFolderOpen(const char *dir);
extern void TrekFolderClose(TrekFolder *f);
extern TrekMigration *TrekScanFolder(TrekFolder *f, int *nmigrations,
									  bool sorted, TrekRevisions **revs);
extern void TrekHashFile(TrekFolder *f, const char *file, char *sha256,
						 bool *no_transaction);
extern char *TrekReadFile(TrekFolder *f, const char *file, int *len,
						  char *sha256, bool *no_transaction);

#endif							/* TREK_FOLDER_H */
