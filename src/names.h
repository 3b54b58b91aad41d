/*-------------------------------------------------------------------------
 *
 * names.h
 *	  Names copied into blocks, and a folder's revision names, numbered.
 *	  Pure code: no files, no SPI.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_NAMES_H
#define TREK_NAMES_H

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

/* the revision names of a folder, numbered ("initial" is 0) */
typedef struct TrekRevisions TrekRevisions;

extern TrekRevisions *TrekRevisionsCreate(int expected);
extern int	TrekRevisionsAdd(TrekRevisions *revs, const char *name, int len);
extern char *TrekRevisionsName(TrekRevisions *revs, int rev);
extern int	TrekRevisionsFind(TrekRevisions *revs, const char *name, int len);
extern char **TrekRevisionsNames(TrekRevisions *revs, int *n);

#endif							/* TREK_NAMES_H */
