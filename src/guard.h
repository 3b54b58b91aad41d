/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  Who may read which migration folder.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_GUARD_H
#define TREK_GUARD_H

extern char *TrekAllowedDirectories;

extern void TrekDefineSettings(void);
extern char *TrekCheckFolder(const char *dir);
extern void TrekCheckFile(const char *path);

#endif							/* TREK_GUARD_H */
