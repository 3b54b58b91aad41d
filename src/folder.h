/*-------------------------------------------------------------------------
 *
 * folder.h
 *	  Collecting the migrations of a folder and reading their files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_FOLDER_H
#define TREK_FOLDER_H

#define TREK_SHA256_HEX_LEN 64

typedef struct TrekMigration
{
	char	   *file;			/* base name */
	char	   *from;
	char	   *to;
	bool		up;
	bool		python;
} TrekMigration;

extern TrekMigration *TrekScanFolder(const char *dir, int *nmigrations);
extern int	TrekOpenFolder(const char *dir);
extern void TrekCloseFolder(int dirfd);
extern char *TrekReadFile(const char *dir, int dirfd, const char *file,
						  int *len, char *sha256);
extern void TrekHashFile(const char *dir, int dirfd, const char *file,
						 char *sha256);

#endif							/* TREK_FOLDER_H */
