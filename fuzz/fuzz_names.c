/*-------------------------------------------------------------------------
 *
 * fuzz_names.c
 *	  libFuzzer harness for the migration file-name grammar.
 *
 * Every input (cut at its first NUL byte, as a directory entry would be) is
 * classified by TrekParseFileName and by a reference matcher written
 * straight from the regular expression
 *	  ^\d{8}_(\w+)_(up|down)_(\w+)\.(sql|py)$
 * restricted to ASCII, which tries every split and keeps the longest first
 * group as a backtracking regex engine would.  The two must agree on the
 * outcome and on every offset; TrekIsRevisionName must agree with a
 * byte-by-byte reference.  Any difference aborts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdint.h>
#include <stdlib.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
ref_word(unsigned char c)
{
	return (c >= '0' && c <= '9') || c == '_' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
ref_words(const char *s, int from, int to)
{
	if (to <= from)
		return false;
	for (int i = from; i < to; i++)
		if (!ref_word((unsigned char) s[i]))
			return false;
	return true;
}

/* does s[at..) start with lit? */
static bool
ref_lit(const char *s, int len, int at, const char *lit)
{
	int			n = strlen(lit);

	return at >= 0 && at + n <= len && memcmp(s + at, lit, n) == 0;
}

/*
 * The regular expression, by brute force: every end of group 1, every
 * alternative of group 2, every end of group 3, every alternative of group
 * 4.  Keeps the match with the longest group 1 (greedy).
 */
static bool
ref_match(const char *s, int len, TrekName *best)
{
	static const char *const dirs[] = {"up", "down"};
	static const char *const exts[] = {"sql", "py"};
	bool		found = false;

	if (len < 9)
		return false;
	for (int i = 0; i < 8; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (s[8] != '_')
		return false;

	for (int g1end = 10; g1end <= len; g1end++)
	{
		if (!ref_words(s, 9, g1end))
			break;
		for (int d = 0; d < 2; d++)
		{
			int			p = g1end;

			if (!ref_lit(s, len, p, "_") || !ref_lit(s, len, p + 1, dirs[d]))
				continue;
			p += 1 + strlen(dirs[d]);
			if (!ref_lit(s, len, p, "_"))
				continue;
			p++;
			for (int g3end = p + 1; g3end <= len; g3end++)
			{
				if (!ref_words(s, p, g3end))
					break;
				for (int e = 0; e < 2; e++)
				{
					if (!ref_lit(s, len, g3end, ".") ||
						!ref_lit(s, len, g3end + 1, exts[e]) ||
						g3end + 1 + (int) strlen(exts[e]) != len)
						continue;
					/* later (longer) group 1 wins */
					found = true;
					best->from_start = 9;
					best->from_len = g1end - 9;
					best->to_start = p;
					best->to_len = g3end - p;
					best->up = (d == 0);
					best->python = (e == 1);
				}
			}
		}
	}
	return found;
}

static bool
ref_ends_ci(const char *s, int len, const char *suffix)
{
	int			n = strlen(suffix);

	if (len < n)
		return false;
	for (int i = 0; i < n; i++)
	{
		char		c = s[len - n + i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != suffix[i])
			return false;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *name;
	int			len;
	TrekName	got;
	TrekName	want;
	TrekNameResult res;
	bool		ref_ok;

	/* directory entries are at most 255 bytes; keep the reference fast */
	if (size > 512)
		return 0;

	/* exact-size copy: any read past the end is an ASan report */
	name = malloc(size + 1);
	memcpy(name, data, size);
	name[size] = '\0';
	len = strlen(name);

	memset(&got, 0x7f, sizeof(got));
	memset(&want, 0, sizeof(want));
	res = TrekParseFileName(name, &got);
	ref_ok = ref_match(name, len, &want);

	if (ref_ok)
	{
		if (res != TREK_NAME_OK ||
			got.from_start != want.from_start || got.from_len != want.from_len ||
			got.to_start != want.to_start || got.to_len != want.to_len ||
			got.up != want.up || got.python != want.python)
			abort();
		/* offsets inside the name, revisions are revision names */
		if (got.len != (int) len || got.to_start + got.to_len > len ||
			!TrekIsRevisionName(name + got.from_start, got.from_len) ||
			!TrekIsRevisionName(name + got.to_start, got.to_len))
			abort();
	}
	else if (res == TREK_NAME_OK)
		abort();
	else
	{
		/* a near miss warns, everything else is silently ignored */
		bool		near = len > 0 && name[0] != '.' &&
			(ref_ends_ci(name, len, ".sql") || ref_ends_ci(name, len, ".py"));

		if (res != (near ? TREK_NAME_INVALID : TREK_NAME_IGNORED))
			abort();
	}

	/* revision names over the raw bytes, NULs included */
	if (TrekIsRevisionName((const char *) data, (int) Min(size, 4096)) !=
		(size > 0 && ref_words((const char *) data, 0, (int) Min(size, 4096))))
		abort();

	free(name);
	return 0;
}
