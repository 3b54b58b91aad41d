/*-------------------------------------------------------------------------
 *
 * fuzz_path.c
 *	  libFuzzer harness for the allowed-folder test on paths.
 *
 * The input is two paths separated by a NUL byte: an allowed folder and a
 * requested path.  Both go through canonicalize_path() as guard.c's do, and
 * TrekPathWithin must then agree with a component-by-component reference:
 * dir's components are a prefix of path's.  canonicalize_path itself must
 * be idempotent and leave no empty or "." component in an absolute path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdint.h>
#include <stdlib.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* copy at most n bytes of s, cut at a NUL, with room for canonicalize_path */
static char *
take(const uint8_t *s, size_t n)
{
	char	   *p = malloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * Reference: split both absolute paths at "/" (skipping empty components)
 * and compare component lists.
 */
static bool
ref_within(const char *dir, const char *path)
{
	const char *d = dir;
	const char *p = path;

	if (dir[0] != '/' || path[0] != '/')
		return false;
	for (;;)
	{
		size_t		dn;
		size_t		pn;

		while (*d == '/')
			d++;
		while (*p == '/')
			p++;
		if (*d == '\0')
			return true;		/* every component of dir matched */
		if (*p == '\0')
			return false;
		dn = strcspn(d, "/");
		pn = strcspn(p, "/");
		if (dn != pn || memcmp(d, p, dn) != 0)
			return false;
		d += dn;
		p += pn;
	}
}

static void
check_canonical(const char *p)
{
	char	   *again = strdup(p);

	canonicalize_path(again);
	if (strcmp(again, p) != 0)
		abort();
	free(again);
	if (p[0] != '/')
		return;
	if (strstr(p, "//") != NULL || strstr(p, "/./") != NULL)
		abort();
	if (strlen(p) > 1 && p[strlen(p) - 1] == '/')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, '\0', size);
	size_t		n1 = sep ? (size_t) (sep - data) : size;
	char	   *dir;
	char	   *path;

	if (size > 4096)
		return 0;
	dir = take(data, n1);
	path = sep ? take(sep + 1, size - n1 - 1) : strdup("/");

	canonicalize_path(dir);
	canonicalize_path(path);
	check_canonical(dir);
	check_canonical(path);

	/* ".." is left alone by the lexical test: compare only paths without */
	if (strstr(dir, "..") == NULL && strstr(path, "..") == NULL)
	{
		if (TrekPathWithin(dir, path) != ref_within(dir, path))
			abort();
	}
	/* a folder always contains itself */
	if (dir[0] == '/' && !TrekPathWithin(dir, dir))
		abort();

	free(dir);
	free(path);
	return 0;
}
