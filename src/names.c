/*-------------------------------------------------------------------------
 *
 * names.c
 *	  A folder's revision names, numbered.
 *
 * Pure code, below every other room: scanning a folder (folder.c) numbers
 * its revision names here, and the revision graph (graph.c) takes its nodes
 * from those numbers.  Names map to numbers through PostgreSQL's
 * simplehash.h; the names themselves are the caller's, kept, not copied.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "names.h"

/* one revision name and its number */
typedef struct TrekRevisionEntry
{
	const char *name;			/* the caller's, kept */
	int			rev;
	uint32		hash;
	char		status;			/* simplehash's */
} TrekRevisionEntry;

static inline uint32
name_hash(const char *name, int len)
{
	return hash_bytes((const unsigned char *) name, len);
}

/* revision names are short: a loop beats a call to strcmp() */
static inline bool
same_name(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b)
		a++, b++;
	return *a == *b;
}

#define SH_PREFIX trek_revhash
#define SH_ELEMENT_TYPE TrekRevisionEntry
#define SH_KEY_TYPE const char *
#define SH_KEY name
#define SH_HASH_KEY(tb, key) name_hash(key, strlen(key))
#define SH_EQUAL(tb, a, b) same_name(a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct TrekRevisions
{
	trek_revhash_hash *table;	/* name to number */
	char	  **names;			/* by number */
	int			n;
	int			cap;
};

/*
 * Number of revision name, len bytes long: with add, a new number when
 * there is none yet (and name, which must stay allocated as long as r, is
 * kept), else -1.
 */
static int
find_revision(TrekRevisions *r, const char *name, int len, bool add)
{
	uint32		hash = name_hash(name, len);
	TrekRevisionEntry *e;
	bool		found;

	if (!add)
	{
		e = trek_revhash_lookup_hash(r->table, name, hash);
		return e ? e->rev : -1;
	}

	/* room for one more name (maybe one early: the name may be known) */
	if (r->n == r->cap)
	{
		if (r->cap >= (int) (MaxAllocSize / sizeof(char *) / 2))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("migration folder has too many revisions")));
		r->cap *= 2;
		r->names = repalloc(r->names, r->cap * sizeof(char *));
	}
	e = trek_revhash_insert_hash(r->table, name, hash, &found);
	if (!found)
	{
		e->rev = r->n;
		r->names[r->n++] = unconstify(char *, name);	/* Add's */
	}
	return e->rev;
}

/*
 * An empty set of revision names, sized for about expected of them, with
 * "initial" as number 0.
 */
TrekRevisions *
TrekRevisionsCreate(int expected)
{
	TrekRevisions *r = palloc0(sizeof(TrekRevisions));

	expected = Max(expected, 16);
	r->table = trek_revhash_create(CurrentMemoryContext, expected, NULL);
	r->cap = expected;
	r->names = palloc(r->cap * sizeof(char *));
	(void) find_revision(r, pstrdup("initial"), 7, true);
	return r;
}

/*
 * Number of revision name, len bytes and a terminating zero, added if new:
 * then name itself is kept, so it must stay allocated as long as revs.
 */
int
TrekRevisionsAdd(TrekRevisions *revs, char *name, int len)
{
	Assert(name[len] == '\0');
	return find_revision(revs, name, len, true);
}

char *
TrekRevisionsName(TrekRevisions *revs, int rev)
{
	Assert(rev >= 0 && rev < revs->n);
	return revs->names[rev];
}

/* number of revision name, or -1 */
int
TrekRevisionsFind(TrekRevisions *revs, const char *name)
{
	return find_revision(revs, name, strlen(name), false);
}

/* the names by number, *n of them */
char	  **
TrekRevisionsNames(TrekRevisions *revs, int *n)
{
	*n = revs->n;
	return revs->names;
}
