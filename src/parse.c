/*-------------------------------------------------------------------------
 *
 * parse.c
 *	  Pure text scanning: migration file names and migration SQL text.
 *
 * The file-name grammar is that of asyncpg-trek, the regular expression
 *	  ^\d{8}_(\w+)_(up|down)_(\w+)\.(sql|py)$
 * restricted to ASCII.  Its first group is greedy, so the separator is the
 * last "_up_" or "_down_" that leaves a non-empty revision on each side.
 *
 * The SQL scanner knows just enough of PostgreSQL's lexical rules (quoted
 * strings, quoted identifiers, dollar quoting, comments) to find psql
 * meta-commands, the first real token of a statement and the statement
 * around a syntax error.  Strings are scanned as the server's lexer scans
 * them: backslash escapes in E'' strings, and also in plain '' strings
 * when standard_conforming_strings is off.
 *
 * TrekPathWithin is the lexical half of the allowed-folder test: whether one
 * canonical absolute path lies inside another.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "parse.h"

static inline bool
is_word_char(char c)
{
	unsigned char u = (unsigned char) c;

	return (unsigned) (u - '0') < 10 || (unsigned) ((u | 0x20) - 'a') < 26 ||
		u == '_';
}

/*
 * Can c continue an SQL identifier?  PostgreSQL also takes every byte with
 * the high bit set (part of a multibyte character) and "$".
 */
static bool
is_ident_char(char c)
{
	return is_word_char(c) || c == '$' || (unsigned char) c >= 0x80;
}

/*
 * Is s[0..len) a revision name: one or more ASCII letters, digits, "_" or
 * "." (other tools' versions, as Flyway's "1.10"), not starting with "."?
 */
bool
TrekIsRevisionName(const char *s, int len)
{
	if (len <= 0 || s[0] == '.')
		return false;
	for (int i = 0; i < len; i++)
		if (!is_word_char(s[i]) && s[i] != '.')
			return false;
	return true;
}

static bool
ends_with_ci(const char *s, int len, const char *suffix)
{
	int			slen = strlen(suffix);

	return len >= slen && pg_strncasecmp(s + len - slen, suffix, slen) == 0;
}

/*
 * Classify a directory entry's name, and for a migration fill in *out.
 *
 * Hidden names and names not ending in .sql or .py (in any letter case) are
 * TREK_NAME_IGNORED; other names that break the grammar, such as
 * "20240101_a_UP_b.sql" or "x.SQL", are TREK_NAME_INVALID so the caller can
 * warn about what is almost always a typo.
 */
TrekNameResult
TrekParseFileName(const char *name, TrekName *out)
{
	int			len = strlen(name);
	int			stem;
	int			sep;
	int			seplen = 0;

	if (len == 0 || name[0] == '.')
		return TREK_NAME_IGNORED;

	if (len >= 4 && memcmp(name + len - 4, ".sql", 4) == 0)
	{
		out->python = false;
		stem = len - 4;
	}
	else if (len >= 3 && memcmp(name + len - 3, ".py", 3) == 0)
	{
		out->python = true;
		stem = len - 3;
	}
	else if (ends_with_ci(name, len, ".sql") || ends_with_ci(name, len, ".py"))
		return TREK_NAME_INVALID;
	else
		return TREK_NAME_IGNORED;

	/* eight digits and "_" */
	if (stem < 9)
		return TREK_NAME_INVALID;
	for (int i = 0; i < 8; i++)
		if (name[i] < '0' || name[i] > '9')
			return TREK_NAME_INVALID;
	if (name[8] != '_')
		return TREK_NAME_INVALID;

	/*
	 * The rest must be word characters only, and the first group is greedy:
	 * the separator is the rightmost "_up_" or "_down_" at a position p with
	 * at least one character before it (after the date) and one after it. One
	 * pass from the right checks both.
	 */
	sep = -1;
	for (int p = stem - 1; p >= 9; p--)
	{
		if (!is_word_char(name[p]))
			return TREK_NAME_INVALID;
		if (sep >= 0 || name[p] != '_' || p == 9)
			continue;
		if (p + 4 < stem && name[p + 1] == 'u' && name[p + 2] == 'p' &&
			name[p + 3] == '_')
		{
			sep = p;
			seplen = 4;
		}
		else if (p + 6 < stem && name[p + 1] == 'd' &&
				 memcmp(name + p + 2, "own_", 4) == 0)
		{
			sep = p;
			seplen = 6;
		}
	}
	if (sep < 0)
		return TREK_NAME_INVALID;
	out->up = seplen == 4;
	out->from_start = 9;
	out->from_len = sep - 9;
	out->to_start = sep + seplen;
	out->to_len = stem - (sep + seplen);
	out->len = len;
	return TREK_NAME_OK;
}

/*
 * Does the string literal whose opening quote is sql[i] take backslash
 * escapes?  E'...' does; B'...', X'...' and U&'...' never do; a plain (or
 * N'...') string does when standard_conforming_strings is off.  A prefix
 * letter counts only where it starts a token.
 */
static bool
backslash_escapes(const char *sql, int i, bool std_strings)
{
	char		p = i > 0 ? sql[i - 1] : '\0';
	bool		prefix = i > 0 && (i == 1 || !is_ident_char(sql[i - 2]));

	if (prefix && (p == 'E' || p == 'e'))
		return true;
	if (prefix && (p == 'B' || p == 'b' || p == 'X' || p == 'x'))
		return false;
	if (p == '&' && i > 1 && (sql[i - 2] == 'U' || sql[i - 2] == 'u') &&
		(i == 2 || !is_ident_char(sql[i - 3])))
		return false;
	return !std_strings;
}

/*
 * Skip a quoted string, identifier, key word or comment starting at sql[i];
 * return the offset just past it, or i itself if nothing of the kind starts
 * there.  Unterminated constructs run to the end of the text.
 */
static int
skip_token(const char *sql, int i, int len, bool std_strings)
{
	char		c = sql[i];

	if (c == '-' && i + 1 < len && sql[i + 1] == '-')
	{
		while (i < len && sql[i] != '\n')
			i++;
		return i;
	}
	if (c == '/' && i + 1 < len && sql[i + 1] == '*')
	{
		int			depth = 1;

		i += 2;
		while (i < len && depth > 0)
		{
			if (sql[i] == '/' && i + 1 < len && sql[i + 1] == '*')
			{
				depth++;
				i += 2;
			}
			else if (sql[i] == '*' && i + 1 < len && sql[i + 1] == '/')
			{
				depth--;
				i += 2;
			}
			else
				i++;
		}
		return i;
	}
	if (c == '\'' || c == '"')
	{
		bool		escapes = c == '\'' && backslash_escapes(sql, i, std_strings);

		i++;
		while (i < len)
		{
			if (escapes && sql[i] == '\\' && i + 1 < len)
				i += 2;
			else if (sql[i] == c)
			{
				if (i + 1 < len && sql[i + 1] == c)
					i += 2;		/* doubled quote */
				else
					return i + 1;
			}
			else
				i++;
		}
		return i;
	}
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		(unsigned char) c >= 0x80)
	{
		/* an identifier or key word, which may contain "$" */
		while (i < len && is_ident_char(sql[i]))
			i++;
		return i;
	}
	if (c == '$' && (i == 0 || !is_ident_char(sql[i - 1])))
	{
		/* $tag$ ... $tag$, where tag is empty or an identifier */
		int			j = i + 1;
		int			taglen;

		if (j < len && sql[j] >= '0' && sql[j] <= '9')
			return i;			/* a parameter like $1 */
		while (j < len && (is_word_char(sql[j]) || (unsigned char) sql[j] >= 0x80))
			j++;
		if (j >= len || sql[j] != '$')
			return i;
		taglen = j - i + 1;
		for (int k = j + 1; k + taglen <= len; k++)
			if (sql[k] == '$' && memcmp(sql + k, sql + i, taglen) == 0)
				return k + taglen;
		return len;
	}
	return i;
}

/*
 * Offset of the first psql meta-command ("\" as the first non-blank
 * character of a line, outside quotes and comments), or -1 if none.
 * std_strings is the session's standard_conforming_strings.
 */
int
TrekFindMetaCommand(const char *sql, int len, bool std_strings)
{
	bool		line_start = true;
	int			i = 0;

	while (i < len)
	{
		char		c = sql[i];
		int			next;

		if (c == '\n')
		{
			line_start = true;
			i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v')
		{
			i++;
			continue;
		}
		if (c == '\\' && line_start)
			return i;
		line_start = false;
		next = skip_token(sql, i, len, std_strings);
		i = (next > i) ? next : i + 1;
	}
	return -1;
}

/*
 * The statement of sql[0..len) that holds byte offset: *start is just past
 * the last ";" before it that lies outside quotes and comments (or 0, then
 * blanks and comments skipped), *end just past the next such ";" at or
 * after it (or len).  A ";" inside a BEGIN ATOMIC body counts as an end
 * too; for showing where a syntax error is, that is close enough.
 */
void
TrekStatementBounds(const char *sql, int len, int offset, bool std_strings,
					int *start, int *end)
{
	int			i = 0;
	int			s = 0;

	*end = len;
	while (i < len)
	{
		int			next;

		if (sql[i] == ';')
		{
			if (i >= offset)
			{
				*end = i + 1;
				break;
			}
			s = i + 1;
			i++;
			continue;
		}
		next = skip_token(sql, i, len, std_strings);
		i = (next > i) ? next : i + 1;
	}
	if (s > offset)
		s = offset;
	s = TrekSkipBlanks(sql, s, len);
	*start = s > offset ? offset : s;
}

/*
 * Offset of the first character at or after start that is not white space
 * or part of a comment (len if there is none).
 */
int
TrekSkipBlanks(const char *sql, int start, int len)
{
	int			i = start;

	while (i < len)
	{
		char		c = sql[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
			c == '\v')
			i++;
		else if ((c == '-' && i + 1 < len && sql[i + 1] == '-') ||
				 (c == '/' && i + 1 < len && sql[i + 1] == '*'))
			i = skip_token(sql, i, len, true);
		else
			break;
	}
	return i;
}

/*
 * 1-based line number of byte offset in sql.  Lines end with "\n", so CRLF
 * files count the same as LF files.
 */
int
TrekLineNumber(const char *sql, int offset)
{
	int			line = 1;

	for (int i = 0; i < offset && sql[i] != '\0'; i++)
		if (sql[i] == '\n')
			line++;
	return line;
}

/*
 * Is path inside folder dir (or dir itself)?  Both are canonical absolute
 * paths, as canonicalize_path() or realpath() leave them: no trailing "/"
 * except for the root folder, which contains every path.
 */
bool
TrekPathWithin(const char *dir, const char *path)
{
	size_t		n = strlen(dir);

	if (n == 0 || dir[0] != '/' || path[0] != '/')
		return false;
	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(dir, path, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/*
 * Does migration text start with the line "-- trek:no-transaction" (after
 * an optional UTF-8 byte order mark; blanks allowed around the colon and
 * at the line's ends)?  For Python files the line may also start with "#"
 * instead of "--", so that the marker is found (and refused) there too.
 */
bool
TrekNoTransactionMarker(const char *text, int len, bool python)
{
	int			i = 0;

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && (text[i] == ' ' || text[i] == '\t'))
		i++;
	if (i + 2 <= len && text[i] == '-' && text[i + 1] == '-')
		i += 2;
	else if (python && i < len && text[i] == '#')
		i++;
	else
		return false;
	while (i < len && (text[i] == ' ' || text[i] == '\t'))
		i++;
	if (i + 4 > len || memcmp(text + i, "trek", 4) != 0)
		return false;
	i += 4;
	while (i < len && (text[i] == ' ' || text[i] == '\t'))
		i++;
	if (i >= len || text[i] != ':')
		return false;
	i++;
	while (i < len && (text[i] == ' ' || text[i] == '\t'))
		i++;
	if (i + 14 > len || memcmp(text + i, "no-transaction", 14) != 0)
		return false;
	i += 14;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
		i++;
	return i == len || text[i] == '\n';
}
