/*-------------------------------------------------------------------------
 *
 * fuzz_sql.c
 *	  libFuzzer harness for the SQL text scanner.
 *
 * The input is used as migration text, in a buffer of exactly its size (no
 * terminating NUL), so any read past the end is an AddressSanitizer report.
 * Checked for every input:
 *	- TrekFindMetaCommand returns -1 or the offset of a "\" that only blanks
 *	  separate from the start of its line, and nothing earlier is found in
 *	  the text cut just before it, with standard_conforming_strings on
 *	  and off;
 *	- TrekStatementBounds gives a statement that holds its offset and lies
 *	  within the text;
 *	- TrekSkipBlanks stays within [start, len], is idempotent, and skips only
 *	  white space and comments (what it skips contains no other token start);
 *	- TrekLineNumber counts "\n" bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdint.h>
#include <stdlib.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			len;
	char	   *sql;
	int			meta;
	int			lines;

	if (size > 1 << 20)
		return 0;
	len = (int) size;
	sql = malloc(size > 0 ? size : 1);
	memcpy(sql, data, size);

	for (int std = 0; std <= 1; std++)
	{
		meta = TrekFindMetaCommand(sql, len, std);
		if (meta != -1)
		{
			if (meta < 0 || meta >= len || sql[meta] != '\\')
				abort();
			for (int i = meta - 1; i >= 0 && sql[i] != '\n'; i--)
				if (!blank(sql[i]))
					abort();
			if (TrekFindMetaCommand(sql, meta, std) != -1)
				abort();
		}
		/* the statement around an offset holds it and stays in the text */
		for (int off = 0; off < len; off += (len / 5) + 1)
		{
			int			s;
			int			e;

			TrekStatementBounds(sql, len, off, std, &s, &e);
			if (s < 0 || s > off || e <= off || e > len)
				abort();
		}
	}

	/* blanks from a few starting points */
	for (int start = 0; start <= len; start += (len / 7) + 1)
	{
		int			end = TrekSkipBlanks(sql, start, len);

		if (end < start || end > len)
			abort();
		if (TrekSkipBlanks(sql, end, len) != end)
			abort();
		if (end < len &&
			(blank(sql[end]) || sql[end] == '\n' ||
			 (sql[end] == '-' && end + 1 < len && sql[end + 1] == '-') ||
			 (sql[end] == '/' && end + 1 < len && sql[end + 1] == '*')))
			abort();
		/* what was skipped starts with a blank or a comment */
		if (end > start &&
			!(blank(sql[start]) || sql[start] == '\n' ||
			  (sql[start] == '-' && start + 1 < len && sql[start + 1] == '-') ||
			  (sql[start] == '/' && start + 1 < len && sql[start + 1] == '*')))
			abort();
	}

	/* line numbers: 1 + number of "\n" before the offset (NUL stops it) */
	lines = 1;
	for (int i = 0; i <= len; i++)
	{
		if (i == len || sql[i] == '\0')
		{
			if (TrekLineNumber(sql, i) != lines)
				abort();
			break;
		}
		if (i % 97 == 0 && TrekLineNumber(sql, i) != lines)
			abort();
		if (sql[i] == '\n')
			lines++;
	}

	free(sql);
	return 0;
}
