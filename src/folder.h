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

#include "names.h"
#include "types.h"



/* a migration folder opened and checked for the current user */
typedef struct TrekFolder
{
	char	   *path;			/* canonical path of the opened folder */
	int			fd;				/* its descriptor (fd.c's), or -1 */
	bool		confined;		/* user limited to trek.allowed_directories */
	List	   *roots;			/* the allowed folders, resolved (confined) */
} TrekFolder;


extern TrekFolder *TrekFolderOpen(const char *dir);
extern void TrekFolderClose(TrekFolder *f);
extern TrekMigration *TrekScanFolder(TrekFolder *f, int *nmigrations,
									 bool sorted, TrekRevisions **revs);
extern void TrekHashFile(TrekFolder *f, const char *file, char *sha256,
						 bool *no_transaction);
extern char *TrekReadFile(TrekFolder *f, const char *file, int *len,
						  char *sha256, bool *no_transaction);

#endif							/* TREK_FOLDER_H */
