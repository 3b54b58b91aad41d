/*-------------------------------------------------------------------------
 *
 * names.h
 *	  A folder's revision names, numbered.  Pure code: no files, no SPI.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_NAMES_H
#define TREK_NAMES_H

/* the revision names of a folder, numbered ("initial" is 0) */
typedef struct TrekRevisions TrekRevisions;

extern TrekRevisions *TrekRevisionsCreate(int expected);
extern int	TrekRevisionsAdd(TrekRevisions *revs, char *name, int len);
extern char *TrekRevisionsName(TrekRevisions *revs, int rev);
extern int	TrekRevisionsFind(TrekRevisions *revs, const char *name);
extern char **TrekRevisionsNames(TrekRevisions *revs, int *n);

#endif							/* TREK_NAMES_H */
