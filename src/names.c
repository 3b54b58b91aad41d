/*-------------------------------------------------------------------------
 *
 * names.c
 *	  Names copied into blocks, and a folder's revision names, numbered.
 *
 * Pure code, below every other room: scanning a folder (folder.c) copies
 * its file names here and numbers its revision names, and the revision
 * graph (graph.c) takes its nodes from those numbers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "port/pg_bitutils.h"
#include "utils/memutils.h"

#include "names.h"

#define TREK_STRING_BLOCK 32768

/*
 * Copy len bytes of s and a terminating zero into strings' blocks.
 */
char *
TrekStringsCopy(TrekStrings *strings, const char *s, size_t len)
{
	char	   *p;

	if (len + 1 > strings->left)
	{
		strings->left = Max(TREK_STRING_BLOCK, len + 1);
		strings->free = palloc(strings->left);
	}
	p = strings->free;
	memcpy(p, s, len);
	p[len] = '\0';
	strings->free += len + 1;
	strings->left -= len + 1;
	return p;
}

/*
 * Revision names to numbers.  Open addressing with linear probing: each
 * slot holds the name's hash in its high half and number + 1 in its low
 * half (0 for an empty slot), and the table is at most 70% full.  Eight
 * bytes a slot keep the table of a 10,000-file folder (128 kB) in the
 * processor's cache, and the stored hash spares comparing names that merely
 * share a slot.
 */
struct TrekRevisions
{
	uint64	   *slots;
	uint32		mask;			/* number of slots - 1 */
	char	  **names;			/* by number */
	int			n;
	int			cap;
	TrekStrings strings;		/* where the names are copied */
};

static void
grow_slots(TrekRevisions *r, uint32 nslots)
{
	uint64	   *old = r->slots;
	uint32		oldn = old ? r->mask + 1 : 0;

	r->slots = palloc_extended(nslots * sizeof(uint64),
							   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	r->mask = nslots - 1;
	for (uint32 k = 0; k < oldn; k++)
	{
		uint32		i;

		if (old[k] == 0)
			continue;
		for (i = (uint32) (old[k] >> 32) & r->mask; r->slots[i] != 0;
			 i = (i + 1) & r->mask)
			;
		r->slots[i] = old[k];
	}
	if (old)
		pfree(old);
}

/*
 * Is zero-terminated stored the same as the len bytes at name, which hold
 * no zero byte?  Revision names are short, so a loop beats a call.
 */
static inline bool
same_name(const char *stored, const char *name, int len)
{
	for (int k = 0; k < len; k++)
		if (stored[k] != name[k])
			return false;		/* also where stored ends first */
	return stored[len] == '\0';
}

static inline uint32
revision_hash(const char *name, int len)
{
	return hash_bytes((const unsigned char *) name, len);
}

/*
 * Number of the revision named by the len bytes at name, whose hash is
 * hash, or -1 when there is none and add is false; with add, a new number.
 */
static int
find_revision(TrekRevisions *r, const char *name, int len, uint32 hash,
			  bool add)
{
	uint32		i;

	for (i = hash & r->mask; r->slots[i] != 0; i = (i + 1) & r->mask)
	{
		int			rev = (int) (uint32) r->slots[i] - 1;

		if ((uint32) (r->slots[i] >> 32) == hash &&
			same_name(r->names[rev], name, len))
			return rev;
	}
	if (!add)
		return -1;

	if (r->n == r->cap)
	{
		if (r->cap >= (int) (MaxAllocSize / sizeof(char *) / 2))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("migration folder has too many revisions")));
		r->cap *= 2;
		r->names = repalloc(r->names, r->cap * sizeof(char *));
	}
	r->slots[i] = ((uint64) hash << 32) | (uint32) (r->n + 1);
	r->names[r->n] = TrekStringsCopy(&r->strings, name, len);
	if ((uint64) 10 * ++r->n > (uint64) 7 * r->mask)
		grow_slots(r, 2 * (r->mask + 1));
	return r->n - 1;
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
	grow_slots(r, pg_nextpower2_32((uint32) expected));
	r->cap = expected;
	r->names = palloc(r->cap * sizeof(char *));
	(void) find_revision(r, "initial", 7, revision_hash("initial", 7), true);
	return r;
}

/* number of the revision named by the len bytes at name, added if new */
int
TrekRevisionsAdd(TrekRevisions *revs, const char *name, int len)
{
	return find_revision(revs, name, len, revision_hash(name, len), true);
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
	return find_revision(revs, name, len, revision_hash(name, len), false);
}

/* the names by number, *n of them */
char	  **
TrekRevisionsNames(TrekRevisions *revs, int *n)
{
	*n = revs->n;
	return revs->names;
}
