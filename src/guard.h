/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  Who may read which migration folder.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_GUARD_H
#define TREK_GUARD_H

/* trek.max_file_size, in kB */
#define TREK_DEFAULT_MAX_FILE_SIZE (16 * 1024)

extern char *TrekAllowedDirectories;
extern int	TrekMaxFileSize;

extern void TrekDefineSettings(void);
extern char *TrekCheckFolder(const char *dir);
extern void TrekCheckFile(const char *path);

#endif							/* TREK_GUARD_H */
