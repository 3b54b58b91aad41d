/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  Who may read what: which migration folder, judged on what was
 *	  opened, and what was applied on which track.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_GUARD_H
#define TREK_GUARD_H

#include "nodes/pg_list.h"

/* trek.max_file_size, in kB */
#define TREK_DEFAULT_MAX_FILE_SIZE (16 * 1024)

extern char *TrekAllowedDirectories;
extern int	TrekMaxFileSize;
extern bool TrekCheckApplied;

extern void TrekDefineSettings(void);
extern bool TrekGuardConfined(void);
extern List *TrekGuardRoots(void);
extern bool TrekGuardWithin(List *roots, const char *path);
extern bool TrekGuardMayExplain(List *roots, const char *path);
extern void TrekGuardDeny(const char *dir);
extern bool TrekGuardMaySeeTrack(bool owned, Oid owner);
extern char *TrekGuardDescriptorPath(int fd, const char *fallback);
extern char *TrekPrintable(const char *name);

#endif							/* TREK_GUARD_H */
