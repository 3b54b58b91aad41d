/*-------------------------------------------------------------------------
 *
 * parse.h
 *	  Pure text scanning: migration file names, migration SQL text, paths.
 *
 * Nothing here allocates memory or reports errors, so the code can also be
 * linked into stand-alone fuzzing programs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_PARSE_H
#define TREK_PARSE_H

typedef enum TrekNameResult
{
	TREK_NAME_IGNORED,			/* hidden, or not a .sql/.py file at all */
	TREK_NAME_INVALID,			/* looks like a migration but breaks the
								 * grammar */
	TREK_NAME_OK
} TrekNameResult;

typedef struct TrekName
{
	int			len;			/* of the whole file name */
	int			from_start;		/* offsets into the file name */
	int			from_len;
	int			to_start;
	int			to_len;
	bool		up;				/* up or down edge */
	bool		python;			/* .py rather than .sql */
} TrekName;

extern TrekNameResult TrekParseFileName(const char *name, TrekName *out);
extern bool TrekIsRevisionName(const char *s, int len);

extern int	TrekFindMetaCommand(const char *sql, int len, bool std_strings);
extern void TrekStatementBounds(const char *sql, int len, int offset,
								bool std_strings, int *start, int *end);
extern int	TrekSkipBlanks(const char *sql, int start, int len);
extern int	TrekLineNumber(const char *sql, int offset);

extern bool TrekPathWithin(const char *dir, const char *path);
extern bool TrekNoTransactionMarker(const char *text, int len, bool python);

#endif							/* TREK_PARSE_H */
