/*-------------------------------------------------------------------------
 *
 * names.c
 *	  A folder's revision names, numbered.
 *
 * Pure code, below every other room: scanning a folder (folder.c) numbers
 * its revision names here, and the revision graph (graph.c) takes its nodes
 * from those numbers.  Names map to numbers through PostgreSQL's
 * simplehash.h; each name is copied once, into the current memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "names.h"

/* a name as found, not necessarily zero-terminated */
typedef struct TrekNameKey
{
	const char *str;
	int			len;
} TrekNameKey;

/* one revision name and its number */
typedef struct TrekRevisionEntry
{
	TrekNameKey key;			/* str: the copy in names[rev] */
	int			rev;
	uint32		hash;
	char		status;			/* simplehash's */
} TrekRevisionEntry;

#define SH_PREFIX trek_revhash
#define SH_ELEMENT_TYPE TrekRevisionEntry
#define SH_KEY_TYPE TrekNameKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k).str, (k).len)
#define SH_EQUAL(tb, a, b) \
	((a).len == (b).len && memcmp((a).str, (b).str, (a).len) == 0)
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
 * Number of the revision named by the len bytes at name; with add, a new
 * number when there is none yet, else -1.
 */
static int
find_revision(TrekRevisions *r, const char *name, int len, bool add)
{
	TrekNameKey key = {name, len};
	TrekRevisionEntry *e;
	bool		found;

	if (!add)
	{
		e = trek_revhash_lookup(r->table, key);
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
	e = trek_revhash_insert(r->table, key, &found);
	if (found)
		return e->rev;
	r->names[r->n] = pnstrdup(name, len);
	e->key.str = r->names[r->n];	/* the table keeps the copy */
	e->rev = r->n;
	return r->n++;
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
	(void) find_revision(r, "initial", 7, true);
	return r;
}

/* number of the revision named by the len bytes at name, added if new */
int
TrekRevisionsAdd(TrekRevisions *revs, const char *name, int len)
{
	return find_revision(revs, name, len, true);
}

char *
TrekRevisionsName(TrekRevisions *revs, int rev)
{
	Assert(rev >= 0 && rev < revs->n);
	return revs->names[rev];
}

/* number of the revision named by the len bytes at name, or -1 */
int
TrekRevisionsFind(TrekRevisions *revs, const char *name, int len)
{
	return find_revision(revs, name, len, false);
}

/* the names by number, *n of them */
char	  **
TrekRevisionsNames(TrekRevisions *revs, int *n)
{
	*n = revs->n;
	return revs->names;
}
