/*-------------------------------------------------------------------------
 *
 * format.c
 *	  Folders of other migration tools, read as they are.
 *
 * Besides asyncpg-trek's own names, trek reads the folders of
 * golang-migrate, Flyway, dbmate, goose, sqlx and diesel.  Such a folder is
 * a chain: its versions in the tool's own order, "initial" before the
 * first.  A version's revision name is the version as the tool writes it
 * in its state table.  Its up edge is the file (or section) the tool
 * applies, its down edge the one it reverts with, when there is one.
 *
 * Each file runs as its tool runs it.  Tools that send a file (or section)
 * as one query (golang-migrate always; sqlx, dbmate and diesel when told
 * not to use a transaction) run a file of several statements in one
 * implicit transaction, and a lone statement that cannot run in a
 * transaction block outside one: so does trek.  goose without a
 * transaction, and Flyway with a statement it knows cannot run in one,
 * run statement by statement: so does trek (notxn.c).  A file wrapped in
 * its own BEGIN ... COMMIT runs as one transaction (step.c unwraps it).
 *
 * The format of a folder is trek.format, or, by default, recognised from
 * its names; where names fit several tools (dbmate, goose and sqlx all
 * name files "<version>_<name>.sql"), from the first file's annotations.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "port/pg_bitutils.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "folder.h"
#include "format.h"
#include "parse.h"

int			TrekFormatSetting = TREK_FORMAT_AUTO;

static const struct config_enum_entry TrekFormatOptions[] = {
	{"auto", TREK_FORMAT_AUTO, false},
	{"trek", TREK_FORMAT_TREK, false},
	{"asyncpg-trek", TREK_FORMAT_TREK, true},
	{"golang-migrate", TREK_FORMAT_GOLANG_MIGRATE, false},
	{"flyway", TREK_FORMAT_FLYWAY, false},
	{"dbmate", TREK_FORMAT_DBMATE, false},
	{"goose", TREK_FORMAT_GOOSE, false},
	{"sqlx", TREK_FORMAT_SQLX, false},
	{"diesel", TREK_FORMAT_DIESEL, false},
	{NULL, 0, false}
};

void
TrekFormatDefineSetting(void)
{
	DefineCustomEnumVariable("trek.format",
							 "Format of migration folders: trek's own or another tool's.",
							 "\"auto\" recognises it from the folder's names.",
							 &TrekFormatSetting,
							 TREK_FORMAT_AUTO,
							 TrekFormatOptions,
							 PGC_USERSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
}

const char *
TrekFormatName(TrekFormat format)
{
	for (const struct config_enum_entry *e = TrekFormatOptions; e->name; e++)
		if (e->val == (int) format && !e->hidden)
			return e->name;
	return "?";
}

/* the tool's name as messages write it */
const char *
TrekFormatTitle(TrekFormat format)
{
	return format == TREK_FORMAT_FLYWAY ? "Flyway" : TrekFormatName(format);
}

/* the format named name, or TREK_FORMAT_AUTO for a name that is none */
TrekFormat
TrekFormatFromName(const char *name)
{
	for (const struct config_enum_entry *e = TrekFormatOptions; e->name; e++)
		if (strcmp(e->name, name) == 0 && e->val != TREK_FORMAT_AUTO)
			return (TrekFormat) e->val;
	return TREK_FORMAT_AUTO;
}

/* a parsed file name of another tool */
typedef struct ForeignName
{
	const char *version;		/* into the name */
	int			vlen;
	bool		up;				/* an up file (or one with both sections) */
	bool		down;			/* a down file (or one with both sections) */
	bool		code;			/* goose's .go: only goose can run it */
	bool		companion;		/* Flyway's .conf, diesel's metadata.toml */
	bool		repeatable;		/* Flyway's R__ script: no version */
} ForeignName;

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
ends_with(const char *s, int len, const char *suffix)
{
	int			n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static int
leading_digits(const char *s, int len)
{
	int			n = 0;

	while (n < len && is_digit(s[n]))
		n++;
	return n;
}

/*
 * golang-migrate: ^([0-9]+)_(.*)\.(down|up)\.sql$ (golang-migrate takes
 * any extension; trek reads .sql files).
 */
static bool
parse_golang(const char *name, int len, ForeignName *out)
{
	int			d = leading_digits(name, len);

	if (d == 0 || d >= len || name[d] != '_')
		return false;
	out->version = name;
	out->vlen = d;
	if (ends_with(name, len, ".up.sql") && len - 7 >= d + 1)
		out->up = true;
	else if (ends_with(name, len, ".down.sql") && len - 9 >= d + 1)
		out->down = true;
	else
		return false;
	return true;
}

/*
 * sqlx: "<version>_<description>.sql", ".up.sql" or ".down.sql"; the
 * version is everything before the first "_".
 */
static bool
parse_sqlx(const char *name, int len, ForeignName *out)
{
	const char *us = memchr(name, '_', len);

	if (us == NULL || !ends_with(name, len, ".sql"))
		return false;
	out->version = name;
	out->vlen = us - name;
	if (ends_with(name, len, ".down.sql"))
		out->down = true;
	else
		out->up = true;
	return true;
}

/* dbmate: ^(\d+).*\.sql$ */
static bool
parse_dbmate(const char *name, int len, ForeignName *out)
{
	int			d = leading_digits(name, len);

	if (d == 0 || !ends_with(name, len, ".sql") || len < d + 4)
		return false;
	out->version = name;
	out->vlen = d;
	out->up = out->down = true;
	return true;
}

/* goose: "<version>_<name>.sql" or ".go", the version before the first "_" */
static bool
parse_goose(const char *name, int len, ForeignName *out)
{
	const char *us = memchr(name, '_', len);

	if (ends_with(name, len, ".go"))
		out->code = true;
	else if (!ends_with(name, len, ".sql"))
		return false;
	if (us == NULL)
		return false;
	out->version = name;
	out->vlen = us - name;
	out->up = out->down = true;
	return true;
}

/*
 * Flyway: "V<version>__<description>.sql" (the suffix in any case), and
 * "U<version>__..." for the undo of a version; "<script>.conf" beside a
 * script.  Repeatable "R__" scripts are not versions.
 */
static bool
parse_flyway(const char *name, int len, ForeignName *out)
{
	const char *sep;
	int			stem;

	if (ends_with(name, len, ".sql.conf") && len > 9)
	{
		if (!parse_flyway(name, len - 5, out))
			return false;
		out->up = out->down = false;
		out->companion = true;
		return true;
	}
	if (len < 5 || pg_strncasecmp(name + len - 4, ".sql", 4) != 0)
		return false;
	if (name[0] == 'R' && name[1] == '_' && name[2] == '_')
	{
		out->repeatable = true;
		return true;
	}
	if (name[0] != 'V' && name[0] != 'U')
		return false;
	stem = len - 4;
	sep = NULL;
	for (int i = 1; i + 1 < stem; i++)
		if (name[i] == '_' && name[i + 1] == '_')
		{
			sep = name + i;
			break;
		}
	out->version = name + 1;
	out->vlen = sep ? (int) (sep - name) - 1 : stem - 1;
	if (out->vlen == 0)
		return false;
	out->up = name[0] == 'V';
	out->down = name[0] == 'U';
	return true;
}

/*
 * diesel: a folder "<version>_<name>" holding up.sql, down.sql and
 * metadata.toml; the version is the part before the first "_", dashes
 * removed (done when the revision is made).  name is the folder, or, in
 * a sent folder, "<folder>/<file>".
 */
static bool
parse_diesel(const char *name, int len, bool dir, ForeignName *out)
{
	const char *slash = memchr(name, '/', len);
	const char *us;
	int			flen = slash ? (int) (slash - name) : len;

	if (flen == 0 || !is_digit(name[0]))
		return false;
	if (slash != NULL)
	{
		const char *file = slash + 1;

		if (strcmp(file, "up.sql") == 0)
			out->up = true;
		else if (strcmp(file, "down.sql") == 0)
			out->down = true;
		else if (strcmp(file, "metadata.toml") == 0)
			out->companion = true;
		else
			return false;
	}
	else if (!dir)
		return false;
	else
		out->up = out->down = true;
	us = memchr(name, '_', flen);
	out->version = name;
	out->vlen = us ? (int) (us - name) : flen;
	return true;
}

static bool
parse_name_len(TrekFormat format, const char *name, int len, bool dir,
			   ForeignName *out)
{
	memset(out, 0, sizeof(ForeignName));
	if (len == 0 || name[0] == '.')
		return false;
	if (format == TREK_FORMAT_DIESEL)
		return parse_diesel(name, len, dir, out);
	if (dir || memchr(name, '/', len) != NULL)
		return false;
	switch (format)
	{
		case TREK_FORMAT_GOLANG_MIGRATE:
			return parse_golang(name, len, out);
		case TREK_FORMAT_FLYWAY:
			return parse_flyway(name, len, out);
		case TREK_FORMAT_DBMATE:
			return parse_dbmate(name, len, out);
		case TREK_FORMAT_GOOSE:
			return parse_goose(name, len, out);
		case TREK_FORMAT_SQLX:
			return parse_sqlx(name, len, out);
		default:
			return false;
	}
}

static bool
parse_name(TrekFormat format, const char *name, bool dir, ForeignName *out)
{
	return parse_name_len(format, name, strlen(name), dir, out);
}

/* the families of names recognition tells apart */
typedef enum NameFamily
{
	FAMILY_FLYWAY,
	FAMILY_DIESEL,
	FAMILY_UPDOWN,				/* golang-migrate, or sqlx reversible */
	FAMILY_NUMBERED,			/* dbmate, goose, sqlx */
	NFAMILIES
}			NameFamily;

static const char *const family_names[NFAMILIES] = {
	"Flyway's (\"V1__name.sql\")",
	"diesel's (\"<version>_<name>/up.sql\")",
	"golang-migrate's or sqlx's (\"1_name.up.sql\")",
	"dbmate's, goose's or sqlx's (\"1_name.sql\")",
};

static int
compute_family(const TrekForeignEntry *e)
{
	ForeignName fn;

	/* diesel's are folders, or in a sent folder the files in them */
	if (e->dir || memchr(e->name, '/', e->len) != NULL)
		return parse_name_len(TREK_FORMAT_DIESEL, e->name, e->len, e->dir,
							  &fn) ? FAMILY_DIESEL : -1;
	/* Flyway's start with a letter, the others with their version */
	if (!is_digit(e->name[0]))
		return parse_name_len(TREK_FORMAT_FLYWAY, e->name, e->len, false,
							  &fn) ? FAMILY_FLYWAY : -1;
	if (parse_name_len(TREK_FORMAT_GOLANG_MIGRATE, e->name, e->len, false, &fn))
		return FAMILY_UPDOWN;
	if (parse_name_len(TREK_FORMAT_DBMATE, e->name, e->len, false, &fn) ||
		parse_name_len(TREK_FORMAT_GOOSE, e->name, e->len, false, &fn))
		return FAMILY_NUMBERED;
	return -1;
}

/* the family of entry e's name, or -1 for none; worked out once */
static int
family_of(TrekForeignEntry *e)
{
	if (e->family == -2)
		e->family = (int8) compute_family(e);
	return e->family;
}

/* does line (len bytes, no newline) hold a goose annotation? */
static bool
is_goose_annotation(const char *line, int len)
{
	int			i = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i + 1 >= len || line[i] != '-' || line[i + 1] != '-')
		return false;
	for (int k = i; k + 6 <= len; k++)
		if (memcmp(line + k, "+goose", 6) == 0)
			return true;
	return false;
}

/* does line start a dbmate block: ^--\s*migrate:(up|down)(\s*$|\s+\S+) */
static bool
is_dbmate_marker(const char *line, int len, bool up)
{
	const char *word = up ? "migrate:up" : "migrate:down";
	int			wlen = strlen(word);
	int			i = 2;

	if (len < 2 || line[0] != '-' || line[1] != '-')
		return false;
	while (i < len && isspace((unsigned char) line[i]))
		i++;
	if (len - i < wlen || memcmp(line + i, word, wlen) != 0)
		return false;
	i += wlen;
	return i == len || isspace((unsigned char) line[i]);
}

/*
 * The first (by name) of entries in family, up files only if up_only;
 * NULL if there is none.  A goose folder's .go file counts as goose's.
 */
static const char *
first_of(TrekForeignEntry *entries, int n, int family, bool up_only,
		 bool *go)
{
	const char *first = NULL;

	for (int i = 0; i < n; i++)
	{
		const char *name = entries[i].name;
		ForeignName fn;

		if (family_of(&entries[i]) != family)
			continue;
		if (ends_with(name, entries[i].len, ".go"))
			*go = true;
		else if (up_only &&
				 parse_name(TREK_FORMAT_GOLANG_MIGRATE, name, false, &fn) &&
				 fn.down)
			continue;
		else if (first == NULL || strcmp(name, first) < 0)
			first = name;
	}
	return first;
}

/*
 * The text of the first file of family (see first_of), NUL-terminated, or
 * NULL when there is none; *go as first_of() says.
 */
static char *
first_text(TrekFolder *folder, TrekForeignEntry *entries, int n, int family,
		   bool up_only, bool *go, int *len)
{
	const char *first = first_of(entries, n, family, up_only, go);

	return first != NULL ? TrekReadText(folder, first, len) : NULL;
}

/*
 * dbmate, goose or sqlx, for a folder of "<version>_<name>.sql" files:
 * the first of them by name says which by its annotations.
 */
static TrekFormat
recognise_numbered(TrekFolder *folder, TrekForeignEntry *entries, int n)
{
	bool		go = false;
	int			len = 0;
	char	   *text = first_text(folder, entries, n, FAMILY_NUMBERED, false,
								  &go, &len);

	if (go)
		return TREK_FORMAT_GOOSE;
	for (int start = 0; text != NULL && start < len;)
	{
		const char *nl = memchr(text + start, '\n', len - start);
		int			end = nl ? (int) (nl - text) : len;
		int			llen = end - start;

		if (llen > 0 && text[end - 1] == '\r')
			llen--;
		if (is_dbmate_marker(text + start, llen, true))
			return TREK_FORMAT_DBMATE;
		if (is_goose_annotation(text + start, llen))
			return TREK_FORMAT_GOOSE;
		start = end + 1;
	}
	return TREK_FORMAT_SQLX;
}

/*
 * For a folder of "1_name.up.sql" files, which golang-migrate and sqlx
 * name alike: does its first up file start as sqlx's marked files do?
 */
static bool
first_says_sqlx(TrekFolder *folder, TrekForeignEntry *entries, int n)
{
	bool		go = false;
	int			len = 0;
	char	   *text = first_text(folder, entries, n, FAMILY_UPDOWN, true,
								  &go, &len);

	return text != NULL && len >= 17 &&
		memcmp(text, "-- no-transaction", 17) == 0;
}

/*
 * The format of a folder none of whose names is one of trek's own, from
 * entries, the names that may be another tool's migrations.
 */
static TrekFormat
recognise(TrekFolder *folder, TrekForeignEntry *entries, int n)
{
	int			count[NFAMILIES] = {0};
	int			nfound = 0;
	StringInfoData buf;

	for (int i = 0; i < n; i++)
	{
		int			fam = family_of(&entries[i]);

		if (fam >= 0)
			count[fam]++;
	}
	/* sqlx may mix simple and reversible files */
	if (count[FAMILY_UPDOWN] > 0 && count[FAMILY_NUMBERED] > 0 &&
		recognise_numbered(folder, entries, n) == TREK_FORMAT_SQLX)
	{
		count[FAMILY_NUMBERED] += count[FAMILY_UPDOWN];
		count[FAMILY_UPDOWN] = 0;
		if (count[FAMILY_FLYWAY] == 0 && count[FAMILY_DIESEL] == 0)
			return TREK_FORMAT_SQLX;
	}
	for (int f = 0; f < NFAMILIES; f++)
		nfound += count[f] > 0;
	if (nfound == 1)
	{
		if (count[FAMILY_FLYWAY] > 0)
			return TREK_FORMAT_FLYWAY;
		if (count[FAMILY_DIESEL] > 0)
			return TREK_FORMAT_DIESEL;
		if (count[FAMILY_UPDOWN] > 0)
			return first_says_sqlx(folder, entries, n) ? TREK_FORMAT_SQLX :
				TREK_FORMAT_GOLANG_MIGRATE;
		return recognise_numbered(folder, entries, n);
	}

	initStringInfo(&buf);
	for (int f = 0; f < NFAMILIES; f++)
		if (count[f] > 0)
			appendStringInfo(&buf, "%s%d named like %s", buf.len ? "; " : "",
							 count[f], family_names[f]);
	if (nfound == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" has no migrations", folder->path),
				 errdetail("trek reads folders of asyncpg-trek (\"YYYYMMDD_initial_up_<revision>.sql\"), golang-migrate, Flyway, dbmate, goose, sqlx and diesel."),
				 errhint("Check the folder's path, or name its format with trek.format.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("migration folder \"%s\" fits the formats of several tools",
					folder->path),
			 errdetail("It has %s.", buf.data),
			 errhint("Name its format with trek.format, as SET trek.format = 'goose'; the files of other tools are then ignored.")));
	return TREK_FORMAT_AUTO;	/* keep compiler quiet */
}

/* one version of a folder of another tool, being collected */
typedef struct Version
{
	const char *rev;			/* its revision name (rlen bytes) */
	int			rlen;
	uint64		num;			/* the version, where it is a number */
	const char *key;			/* else what orders it, as bytes (klen) */
	int			klen;
	const char *id;				/* what is the same for one version (idlen) */
	int			idlen;
	const char *up;				/* file names, or NULL */
	const char *down;
	bool		code;
} Version;

/*
 * The revision of a version as the tool writes it in its state table, and
 * what orders versions: golang-migrate, goose and sqlx keep a number (the
 * revision is written without leading zeros), dbmate the digits as written
 * (ordered by file name), Flyway the version with "_" as "." (ordered part
 * by part as numbers, trailing zero parts left out), diesel the part
 * before "_" without dashes (ordered as text).  false for a version the
 * tool refuses.  Copies go into strings.
 */
static bool
version_of(TrekFormat format, const ForeignName *fn, const char *name,
		   TrekStrings *strings, Version *v)
{
	const char *d = fn->version;
	int			n = fn->vlen;
	char		buf[2 * NAME_MAX + 2];
	int			k = 0;

	if (n > NAME_MAX)
		return false;
	switch (format)
	{
		case TREK_FORMAT_GOLANG_MIGRATE:
		case TREK_FORMAT_GOOSE:
		case TREK_FORMAT_SQLX:
			if (n == 0 || leading_digits(d, n) != n)
				return false;
			while (n > 1 && d[0] == '0')
			{
				d++;
				n--;
			}
			/* uint64 for golang-migrate, int64 for goose and sqlx */
			if (n > 20 || (n == 20 && (format != TREK_FORMAT_GOLANG_MIGRATE ||
									   memcmp(d, "18446744073709551615", 20) > 0)) ||
				(n == 19 && format != TREK_FORMAT_GOLANG_MIGRATE &&
				 memcmp(d, "9223372036854775807", 19) > 0))
				return false;
			if (format == TREK_FORMAT_GOOSE && n == 1 && d[0] == '0')
				return false;
			v->num = 0;
			for (int i = 0; i < n; i++)
				v->num = v->num * 10 + (d[i] - '0');
			v->rev = v->id = d;
			v->rlen = v->idlen = n;
			return true;
		case TREK_FORMAT_DBMATE:
			v->rev = v->id = d;
			v->rlen = v->idlen = n;
			v->key = name;
			v->klen = strlen(name);
			return true;
		case TREK_FORMAT_FLYWAY:
			{
				char	   *r = TrekStringsCopy(strings, d, n);
				int			part = 0;	/* where the current part starts */
				int			keep = 0;	/* key length without zero parts */

				for (int i = 0; i < n; i++)
				{
					if (r[i] == '_')
						r[i] = '.';
					if (!is_digit(r[i]) && r[i] != '.')
						return false;
					if (r[i] == '.' && (i == 0 || i == n - 1 || r[i - 1] == '.'))
						return false;
				}
				/* key: each part as its length and its digits */
				for (int i = 0; i <= n; i++)
				{
					if (i < n && r[i] != '.')
						continue;
					while (part < i - 1 && r[part] == '0')
						part++;
					if (i - part == 1 && r[part] == '0')
						part = i;	/* a zero part is empty */
					buf[k++] = (char) (i - part);
					memcpy(buf + k, r + part, i - part);
					k += i - part;
					if (i > part)
						keep = k;
					part = i + 1;
				}
				v->rev = r;
				v->rlen = n;
				v->key = TrekStringsCopy(strings, buf, keep);
				v->klen = keep;
				/* the same version, as text: the parts of the key with dots */
				k = 0;
				for (int i = 0; i < keep; i += 1 + (unsigned char) v->key[i])
				{
					int			plen = (unsigned char) v->key[i];

					if (k > 0)
						buf[k++] = '.';
					if (plen == 0)
						buf[k++] = '0';
					memcpy(buf + k, v->key + i + 1, plen);
					k += plen;
				}
				v->id = TrekStringsCopy(strings, buf, k);
				v->idlen = k;
				return true;
			}
		case TREK_FORMAT_DIESEL:
			for (int i = 0; i < n; i++)
				if (d[i] != '-')
					buf[k++] = d[i];
			if (k == 0 || !TrekIsRevisionName(buf, k))
				return false;
			v->rev = v->key = v->id = TrekStringsCopy(strings, buf, k);
			v->rlen = v->klen = v->idlen = k;
			return true;
		default:
			return false;
	}
}

/* the revision of a version, NUL-terminated, or NULL if it is none */
static char *
revision_of(TrekFormat format, const ForeignName *fn, const char *name)
{
	TrekStrings strings = {NULL, 0};
	Version		v;

	if (!version_of(format, fn, name, &strings, &v))
		return NULL;
	return pnstrdup(v.rev, v.rlen);
}

/* a version being sorted: small, so that sorting moves little memory */
typedef struct VersionRef
{
	uint64		num;
	Version    *v;
} VersionRef;

/* versions that are numbers, in order */
#define ST_SORT sort_numbered
#define ST_ELEMENT_TYPE VersionRef
#define ST_COMPARE(a, b) ((a)->num < (b)->num ? -1 : (a)->num > (b)->num ? 1 : 0)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static inline int
key_cmp(const Version *a, const Version *b)
{
	int			c = memcmp(a->key, b->key, Min(a->klen, b->klen));

	return c != 0 ? c : a->klen - b->klen;
}

/* other versions, in order of their keys */
#define ST_SORT sort_keyed
#define ST_ELEMENT_TYPE VersionRef
#define ST_COMPARE(a, b) key_cmp((a)->v, (b)->v)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static bool
numbered(TrekFormat format)
{
	return format == TREK_FORMAT_GOLANG_MIGRATE ||
		format == TREK_FORMAT_GOOSE || format == TREK_FORMAT_SQLX;
}

/* are a and b one version (dbmate's: the same digits) */
static bool
same_version(TrekFormat format, const Version *a, const Version *b)
{
	if (numbered(format))
		return a->num == b->num;
	if (format == TREK_FORMAT_DBMATE)
		return a->rlen == b->rlen && memcmp(a->rev, b->rev, a->rlen) == 0;
	return key_cmp(a, b) == 0;
}

/* compare numbers written in digits without leading zeros */
static int
number_cmp(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

/*
 * What is the same for all the ways of writing one version of format
 * ("1" for "0001", Flyway's "1" for "1.0"), or NULL for text that is no
 * version of it: for looking up the versions a tool's table names.
 */
char *
TrekFormatVersionId(TrekFormat format, const char *version)
{
	int			n = strlen(version);

	if (numbered(format))
	{
		if (n == 0 || leading_digits(version, n) != n)
			return NULL;
		while (version[0] == '0' && version[1] != '\0')
			version++;
		return pstrdup(version);
	}
	if (format == TREK_FORMAT_FLYWAY)
	{
		TrekStrings strings = {NULL, 0};
		ForeignName fn;
		Version		v;

		memset(&fn, 0, sizeof(fn));
		fn.version = version;
		fn.vlen = n;
		if (!version_of(format, &fn, version, &strings, &v))
			return NULL;
		return pnstrdup(v.id, v.idlen);
	}
	return pstrdup(version);
}

/*
 * Compare two versions of format as the tool orders them (0: the same
 * version): what trek_adopt() reads from a tool's table with the folder's
 * revisions.
 */
int
TrekFormatVersionCmp(TrekFormat format, const char *a, const char *b)
{
	if (numbered(format))
	{
		while (a[0] == '0' && a[1] != '\0')
			a++;
		while (b[0] == '0' && b[1] != '\0')
			b++;
		return number_cmp(a, strlen(a), b, strlen(b));
	}
	if (format == TREK_FORMAT_FLYWAY)
	{
		TrekStrings strings = {NULL, 0};
		ForeignName fa;
		ForeignName fb;
		Version		va,
					vb;

		memset(&fa, 0, sizeof(fa));
		memset(&fb, 0, sizeof(fb));
		fa.version = a;
		fa.vlen = strlen(a);
		fb.version = b;
		fb.vlen = strlen(b);

		/* a version Flyway refuses is no version of the folder */
		if (!version_of(format, &fa, a, &strings, &va))
			return 1;
		if (!version_of(format, &fb, b, &strings, &vb))
			return -1;
		return key_cmp(&va, &vb);
	}
	return strcmp(a, b);
}

/* two files of one version and direction: the tools refuse them too */
static void
duplicate_version(TrekFolder *folder, const char *rev, int rlen,
				  const char *a, const char *b)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("migration folder \"%s\" has two migrations of version \"%s\"",
					folder->path, pnstrdup(rev, rlen)),
			 errdetail("Files \"%s\" and \"%s\".", a, b),
			 errhint("Give one of them another version.")));
}

/*
 * "<folder>/<file>" of a diesel migration folder, copied into strings.
 */
static const char *
diesel_file(TrekStrings *strings, const char *dir, const char *file)
{
	char		buf[2 * NAME_MAX + 16];

	snprintf(buf, sizeof(buf), "%s/%s", dir, file);
	return TrekStringsCopy(strings, buf, strlen(buf));
}

/*
 * The migrations of a folder of another tool: its chain of versions from
 * "initial", an up and (where there is one) a down edge per version.
 */
static TrekMigration *
migrations_of(TrekFolder *folder, TrekFormat format,
			  TrekForeignEntry *entries, int n, TrekRevisions *revs,
			  int *nmigrations)
{
	Version    *vers = palloc(Max(n, 1) * sizeof(Version));
	VersionRef *refs;
	TrekStrings strings = {NULL, 0};
	int			nv = 0;
	int			nout = 0;
	TrekMigration *out;
	const char *refused = NULL;

	for (int i = 0; i < n; i++)
	{
		ForeignName fn;
		Version    *v = &vers[nv];

		if (!parse_name_len(format, entries[i].name, entries[i].len,
							entries[i].dir, &fn) ||
			fn.companion || fn.repeatable)
			continue;
		if (!version_of(format, &fn, entries[i].name, &strings, v))
		{
			if (refused == NULL || strcmp(entries[i].name, refused) < 0)
				refused = entries[i].name;
			continue;
		}
		v->code = fn.code;
		v->up = fn.up ? entries[i].name : NULL;
		v->down = fn.down ? entries[i].name : NULL;
		if (format == TREK_FORMAT_DIESEL && entries[i].dir)
		{
			v->up = diesel_file(&strings, entries[i].name, "up.sql");
			v->down = diesel_file(&strings, entries[i].name, "down.sql");
		}
		nv++;
	}
	CHECK_FOR_INTERRUPTS();
	if (refused != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" has a %s migration with an invalid version: \"%s\"",
						folder->path, TrekFormatTitle(format), refused),
				 errdetail("%s reads the version from the start of the name.",
						   TrekFormatTitle(format))));

	refs = palloc(Max(nv, 1) * sizeof(VersionRef));
	for (int i = 0; i < nv; i++)
	{
		refs[i].num = vers[i].num;
		refs[i].v = &vers[i];
	}
	if (numbered(format))
		sort_numbered(refs, nv);
	else
		sort_keyed(refs, nv);

	/* merge the files of one version (up and down, or a diesel folder) */
	out = palloc(Max(2 * nv, 1) * sizeof(TrekMigration));
	for (int i = 0; i < nv;)
	{
		Version		merged = *refs[i].v;
		int			j = i + 1;
		int			prev;
		int			rev;

		for (; j < nv && same_version(format, refs[i].v, refs[j].v); j++)
		{
			Version    *o = refs[j].v;
			const char *name = merged.rev;	/* NUL-terminated only for errors */

			if (format == TREK_FORMAT_DIESEL)
			{
				/* the files of one folder, or two folders of one version */
				const char *a = merged.up ? merged.up : merged.down;
				const char *b = o->up ? o->up : o->down;
				size_t		alen = strcspn(a, "/");

				if (alen != strcspn(b, "/") || strncmp(a, b, alen) != 0 ||
					(o->up && merged.up) || (o->down && merged.down))
					duplicate_version(folder, name, merged.rlen, a, b);
			}
			else if (o->up && merged.up)
				duplicate_version(folder, name, merged.rlen, merged.up, o->up);
			else if (o->down && merged.down)
				duplicate_version(folder, name, merged.rlen, merged.down, o->down);
			if (o->up)
				merged.up = o->up;
			if (o->down)
				merged.down = o->down;
			merged.code |= o->code;
		}
		if (merged.up == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("migration folder \"%s\" has no up migration for version \"%s\"",
							folder->path, pnstrdup(merged.rev, merged.rlen)),
					 errdetail("It has only \"%s\".", merged.down)));

		prev = nout == 0 ? 0 :
			out[nout - (out[nout - 1].up ? 1 : 2)].to_rev;
		rev = TrekRevisionsAdd(revs, merged.rev, merged.rlen);
		if (rev == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("migration folder \"%s\" has a version named \"initial\"",
							folder->path)));
		out[nout].file = (char *) merged.up;
		out[nout].from_rev = prev;
		out[nout].to_rev = rev;
		out[nout].up = true;
		out[nout].python = false;
		out[nout].code = merged.code;
		nout++;
		if (merged.down)
		{
			out[nout] = out[nout - 1];
			out[nout].file = (char *) merged.down;
			out[nout].from_rev = rev;
			out[nout].to_rev = prev;
			out[nout].up = false;
			nout++;
		}
		i = j;
	}
	for (int i = 0; i < nout; i++)
	{
		out[i].from = TrekRevisionsName(revs, out[i].from_rev);
		out[i].to = TrekRevisionsName(revs, out[i].to_rev);
	}
	if (nout == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" has no %s migrations",
						folder->path, TrekFormatTitle(format)),
				 errhint("Check the folder's path, or trek.format.")));
	*nmigrations = nout;
	pfree(refs);
	pfree(vers);
	return out;
}

/*
 * Flyway's order of repeatable scripts: by description, the name after
 * "R__" with "_" as a space (Java's String order, by UTF-16 code units;
 * byte order for ASCII names).
 */
static int
repeatable_cmp(const void *pa, const void *pb)
{
	const char *a = *(char *const *) pa + 3;
	const char *b = *(char *const *) pb + 3;

	for (;; a++, b++)
	{
		unsigned char ca = *a == '_' ? ' ' : (unsigned char) *a;
		unsigned char cb = *b == '_' ? ' ' : (unsigned char) *b;

		if (ca != cb || ca == '\0')
			return (int) ca - (int) cb;
	}
}

/*
 * The folder's Flyway repeatable scripts, in Flyway's order, and its .conf
 * files, sorted.
 */
static void
find_repeatables(TrekFolder *folder)
{
	folder->repeatables = palloc(Max(folder->nforeign, 1) * sizeof(char *));
	folder->nrepeatables = 0;
	folder->companions = palloc(Max(folder->nforeign, 1) * sizeof(char *));
	folder->ncompanions = 0;
	for (int i = 0; i < folder->nforeign; i++)
	{
		ForeignName fn;
		const char *name = folder->foreign[i].name;

		/* only R__ scripts and .conf files */
		if ((name[0] != 'R' && !ends_with(name, folder->foreign[i].len, ".conf")) ||
			!parse_name_len(TREK_FORMAT_FLYWAY, name, folder->foreign[i].len,
							folder->foreign[i].dir, &fn))
			continue;
		if (fn.repeatable)
			folder->repeatables[folder->nrepeatables++] = folder->foreign[i].name;
		else if (fn.companion)
			folder->companions[folder->ncompanions++] = folder->foreign[i].name;
	}
	qsort(folder->companions, folder->ncompanions, sizeof(char *), name_cmp);
	qsort(folder->repeatables, folder->nrepeatables, sizeof(char *),
		  repeatable_cmp);
	for (int i = 1; i < folder->nrepeatables; i++)
		if (repeatable_cmp(&folder->repeatables[i - 1],
						   &folder->repeatables[i]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("migration folder \"%s\" has two repeatable migrations with one description",
							folder->path),
					 errdetail("Files \"%s\" and \"%s\".",
							   folder->repeatables[i - 1], folder->repeatables[i])));
}

static int
migration_cmp(const void *a, const void *b)
{
	return strcmp(((const TrekMigration *) a)->file,
				  ((const TrekMigration *) b)->file);
}

/*
 * Is current the newest version of a folder of another tool?  For the
 * plan that finds nothing to do: one pass over the entries, without the
 * chain, but with the checks that building the chain makes (the folder's
 * errors are the same whether the track is at head or not).  false also
 * when the chain must be built to say (no version, or an error to report:
 * migrations_of() reports it).
 */
static bool
at_head(TrekFolder *folder, TrekFormat format, TrekForeignEntry *entries,
		int n, const char *current)
{
	/* the versions seen: open addressing into seen[], nothing copied */
	uint32		mask = pg_nextpower2_32((uint32) Max(2 * n, 16)) - 1;
	uint32	   *slots = palloc0((mask + 1) * sizeof(uint32));
	struct
	{
		const char *id;
		int			idlen;
		uint8		flags;		/* 1: an up file, 2: a down file */
		const char *first;		/* the first file of the version */
	}		   *seen = palloc(Max(n, 1) * sizeof(*seen));
	int			nseen = 0;
	TrekStrings strings = {NULL, 0};
	Version		best = {0};
	bool		keyed = !numbered(format);

	for (int i = 0; i < n; i++)
	{
		ForeignName fn;
		Version		v;
		uint32		h;
		uint8		f;
		int			k;

		if (!parse_name_len(format, entries[i].name, entries[i].len,
							entries[i].dir, &fn) ||
			fn.companion || fn.repeatable)
			continue;
		if (!version_of(format, &fn, entries[i].name, &strings, &v))
			return false;
		f = (fn.up ? 1 : 0) | (fn.down ? 2 : 0);
		h = hash_bytes((const unsigned char *) v.id, v.idlen);
		for (h &= mask; slots[h] != 0; h = (h + 1) & mask)
		{
			k = slots[h] - 1;
			if (seen[k].idlen == v.idlen &&
				memcmp(seen[k].id, v.id, v.idlen) == 0)
				break;
		}
		if (slots[h] == 0)
		{
			k = nseen++;
			slots[h] = k + 1;
			seen[k].id = v.id;
			seen[k].idlen = v.idlen;
			seen[k].flags = 0;
			seen[k].first = entries[i].name;
		}
		k = slots[h] - 1;
		if ((seen[k].flags & f) != 0)
			return false;		/* two files of one version */
		if (format == TREK_FORMAT_DIESEL && seen[k].flags != 0)
		{
			size_t		alen = strcspn(seen[k].first, "/");

			if (alen != strcspn(entries[i].name, "/") ||
				strncmp(seen[k].first, entries[i].name, alen) != 0)
				return false;
		}
		seen[k].flags |= f;
		if (nseen == 1 || (keyed ? key_cmp(&v, &best) > 0 : v.num > best.num))
			best = v;
	}
	/* every version has an up file */
	for (int k = 0; k < nseen; k++)
		if ((seen[k].flags & 1) == 0)
			return false;
	return nseen > 0 && (int) strlen(current) == best.rlen &&
		memcmp(current, best.rev, best.rlen) == 0;
}

/*
 * The migrations of open folder folder, whatever its format (trek.format,
 * or recognised): TrekScanFolder() with other tools' folders read too.
 * folder->format says which it was.
 */
TrekMigration *
TrekFormatScan(TrekFolder *folder, int *nmigrations, bool sorted,
			   TrekRevisions **revs)
{
	return TrekFormatScanAt(folder, nmigrations, sorted, revs, NULL);
}

/*
 * TrekFormatScan(), but for a caller that has nothing to do if the track,
 * at revision current, is at the newest version of another tool's folder:
 * then NULL, *nmigrations is -1, and no chain is built.
 */
TrekMigration *
TrekFormatScanAt(TrekFolder *folder, int *nmigrations, bool sorted,
				 TrekRevisions **revs, const char *current)
{
	TrekMigration *migrations;
	int			n;

	folder->format = (TrekFormat) TrekFormatSetting;
	migrations = TrekScanFolder(folder, &n, sorted, revs);
	if (folder->format == TREK_FORMAT_TREK)
	{
		*nmigrations = n;
		return migrations;
	}
	if (folder->format == TREK_FORMAT_AUTO)
		folder->format = recognise(folder, folder->foreign, folder->nforeign);
	if (folder->format == TREK_FORMAT_FLYWAY)
		find_repeatables(folder);
	if (current != NULL &&
		at_head(folder, folder->format, folder->foreign, folder->nforeign,
				current))
	{
		*nmigrations = -1;
		return NULL;
	}
	migrations = migrations_of(folder, folder->format, folder->foreign,
							   folder->nforeign, *revs, &n);
	if (sorted)
		qsort(migrations, n, sizeof(TrekMigration), migration_cmp);
	*nmigrations = n;
	return migrations;
}

/*
 * Is file the migration of a step of format going up (else down) from
 * revision from to revision to?  Checks a plan that came back as jsonb.
 */
bool
TrekFormatStepFile(TrekFormat format, const char *file, bool up,
				   const char *from, const char *to)
{
	ForeignName fn;
	char	   *rev;

	if (!parse_name(format, file, false, &fn) || fn.companion || fn.code)
		return false;
	if (fn.repeatable)
		return up && strcmp(from, to) == 0;
	if (format == TREK_FORMAT_DIESEL && strchr(file, '/') == NULL)
		return false;
	if (up ? !fn.up : !fn.down)
		return false;
	rev = revision_of(format, &fn, file);
	return rev != NULL && strcmp(rev, up ? to : from) == 0;
}

/* lines of a text, one at a time */
typedef struct LineIter
{
	const char *text;
	int			len;
	int			start;			/* of the line */
	int			end;			/* its end, without "\r\n" */
	int			next;
} LineIter;

static bool
next_line(LineIter *it)
{
	const char *nl;

	if (it->next >= it->len)
		return false;
	it->start = it->next;
	nl = memchr(it->text + it->start, '\n', it->len - it->start);
	it->next = nl ? (int) (nl - it->text) + 1 : it->len;
	it->end = nl ? (int) (nl - it->text) : it->len;
	if (it->end > it->start && it->text[it->end - 1] == '\r')
		it->end--;
	return true;
}

/* blank text[from, to) out, keeping line breaks (and so line numbers) */
static void
blank(char *text, int from, int to)
{
	for (int i = from; i < to; i++)
		if (text[i] != '\n' && text[i] != '\r')
			text[i] = ' ';
}

static bool
blank_or_comment(const char *s, int len)
{
	int			i = 0;

	while (i < len && isspace((unsigned char) s[i]))
		i++;
	return i == len || (i + 1 < len && s[i] == '-' && s[i + 1] == '-');
}

static void
format_error(const char *file, const char *tool, const char *what,
			 int line)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s migration \"%s\" is malformed", tool, file),
			 line > 0 ? errdetail("%s (line %d).", what, line) :
			 errdetail("%s.", what)));
}

/*
 * dbmate: keep the block of file the step runs (up: from "-- migrate:up"
 * to "-- migrate:down"; down: from there to the end); *outside when its
 * marker line says "transaction:false".
 */
static void
dbmate_section(const char *file, bool up, char *text, int len, bool *outside)
{
	LineIter	it = {text, len, 0, 0, 0};
	int			up_at = -1;
	int			down_at = -1;
	int			nup = 0;
	int			line = 0;
	int			keep_from;
	int			keep_to;
	const char *opt_line;
	int			opt_len;

	while (next_line(&it))
	{
		line++;
		if (is_dbmate_marker(text + it.start, it.end - it.start, true))
		{
			if (++nup > 1)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("dbmate migration \"%s\" has more than one \"-- migrate:up\" block",
								file),
						 errdetail("dbmate applies the first block and then fails on the second, recording the same version twice (line %d).",
								   line),
						 errhint("Put the statements of both blocks into one.")));
			up_at = it.start;
		}
		else if (is_dbmate_marker(text + it.start, it.end - it.start, false))
		{
			if (up_at < 0 || down_at >= 0)
				format_error(file, "dbmate",
							 "Every \"-- migrate:down\" must follow one \"-- migrate:up\"",
							 line);
			down_at = it.start;
		}
		else if (up_at < 0 &&
				 !blank_or_comment(text + it.start, it.end - it.start))
			format_error(file, "dbmate",
						 "Statements come before the first \"-- migrate:up\"",
						 line);
	}
	if (up_at < 0)
		format_error(file, "dbmate",
					 "It has no \"-- migrate:up\" block", 0);
	if (down_at < 0)
		format_error(file, "dbmate",
					 "It has no \"-- migrate:down\" block", 0);
	keep_from = up ? up_at : down_at;
	keep_to = up ? down_at : len;

	/* options: the words after the marker on its line */
	opt_line = text + keep_from;
	opt_len = strcspn(opt_line, "\n");
	*outside = false;
	for (int i = 0; i + 17 <= opt_len; i++)
		if (i > 0 && memcmp(opt_line + i, "transaction:false", 17) == 0 &&
			isspace((unsigned char) opt_line[i - 1]) &&
			(i + 17 == opt_len || isspace((unsigned char) opt_line[i + 17])))
			*outside = true;

	blank(text, 0, keep_from);
	blank(text, keep_to, len);
}

/*
 * goose: keep the statements of the step's section; annotations are
 * comments already.  *outside when the file says "-- +goose NO
 * TRANSACTION" (anywhere, for both directions).
 */
static void
goose_section(const char *file, bool up, char *text, int len, bool *outside)
{
	LineIter	it = {text, len, 0, 0, 0};
	int			line = 0;
	int			up_at = -1;
	int			down_at = -1;
	bool		in_block = false;

	*outside = false;
	while (next_line(&it))
	{
		const char *l = text + it.start;
		int			llen = it.end - it.start;
		char	   *a;
		char	   *plus;

		line++;
		if (!is_goose_annotation(l, llen))
		{
			if (up_at < 0 && !blank_or_comment(l, llen))
				format_error(file, "goose",
							 "Statements come before \"-- +goose Up\"", line);
			continue;
		}
		if (l[0] == ' ' || l[0] == '\t')
			format_error(file, "goose", "An annotation is indented", line);

		/* as goose: drop every "--" and the "+goose", trim, compare */
		a = palloc(llen + 1);
		{
			int			k = 0;

			for (int i = 0; i < llen; i++)
			{
				if (l[i] == '-' && i + 1 < llen && l[i + 1] == '-')
				{
					i++;
					continue;
				}
				a[k++] = l[i];
			}
			a[k] = '\0';
		}
		plus = strstr(a, "+goose");
		memmove(plus, plus + 6, strlen(plus + 6) + 1);
		if (strstr(a, "+goose") != NULL)
			format_error(file, "goose", "An annotation line holds \"+goose\" twice", line);
		while (*a == ' ' || *a == '\t')
			a++;
		for (int e = strlen(a) - 1; e >= 0 && isspace((unsigned char) a[e]); e--)
			a[e] = '\0';

		if (pg_strcasecmp(a, "Up") == 0)
		{
			if (up_at >= 0)
				format_error(file, "goose", "It has two \"-- +goose Up\" annotations", line);
			up_at = it.start;
		}
		else if (pg_strcasecmp(a, "Down") == 0)
		{
			if (up_at < 0 || down_at >= 0)
				format_error(file, "goose",
							 "\"-- +goose Down\" comes before \"-- +goose Up\" or twice",
							 line);
			down_at = it.start;
		}
		else if (pg_strcasecmp(a, "StatementBegin") == 0)
		{
			if (up_at < 0 || in_block)
				format_error(file, "goose",
							 "\"-- +goose StatementBegin\" outside a section or inside another",
							 line);
			in_block = true;
		}
		else if (pg_strcasecmp(a, "StatementEnd") == 0)
		{
			if (!in_block)
				format_error(file, "goose",
							 "\"-- +goose StatementEnd\" without \"-- +goose StatementBegin\"",
							 line);
			in_block = false;
		}
		else if (pg_strcasecmp(a, "NO TRANSACTION") == 0)
			*outside = true;
		else if (pg_strcasecmp(a, "ENVSUB ON") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("goose migration \"%s\" substitutes environment variables",
							file),
					 errdetail("Line %d is \"-- +goose ENVSUB ON\"; the database server does not have the environment of the goose command.",
							   line),
					 errhint("Write the values into the migration.")));
		else if (pg_strcasecmp(a, "ENVSUB OFF") != 0)
			format_error(file, "goose", "An annotation is not one goose knows", line);
	}
	if (in_block)
		format_error(file, "goose", "\"-- +goose StatementEnd\" is missing", 0);
	if (up_at < 0)
		format_error(file, "goose", "It has no \"-- +goose Up\" annotation", 0);

	if (up)
	{
		blank(text, 0, up_at);
		if (down_at >= 0)
			blank(text, down_at, len);
	}
	else if (down_at >= 0)
		blank(text, 0, down_at);
	else
		blank(text, 0, len);	/* no Down section: nothing to run */
}

/*
 * Statements that both PostgreSQL (PreventInTransactionBlock) and Flyway's
 * PostgreSQLParser run outside a transaction block: CREATE/DROP DATABASE,
 * TABLESPACE or SUBSCRIPTION, ALTER SYSTEM, CREATE/DROP INDEX
 * CONCURRENTLY, REINDEX SCHEMA/DATABASE/SYSTEM, VACUUM.
 */
static bool
outside_for_both(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_IndexStmt:
			return ((IndexStmt *) stmt)->concurrent;
		case T_DropStmt:
			/* only DROP INDEX has CONCURRENTLY */
			return ((DropStmt *) stmt)->concurrent;
		case T_ReindexStmt:
			{
				ReindexStmt *r = (ReindexStmt *) stmt;

				return r->kind == REINDEX_OBJECT_SYSTEM ||
					r->kind == REINDEX_OBJECT_DATABASE ||
					r->kind == REINDEX_OBJECT_SCHEMA;
			}
		case T_VacuumStmt:
			return ((VacuumStmt *) stmt)->is_vacuumcmd;
		case T_CreatedbStmt:
		case T_DropdbStmt:
		case T_AlterSystemStmt:
		case T_CreateTableSpaceStmt:
		case T_DropTableSpaceStmt:
		case T_CreateSubscriptionStmt:
		case T_DropSubscriptionStmt:
			return true;
		default:
			return false;
	}
}

/*
 * Can the statement not run in a transaction block?  The statements that
 * PostgreSQL refuses there and a migration may hold: those above, and
 * REINDEX ... CONCURRENTLY, CLUSTER of every table, DETACH PARTITION ...
 * CONCURRENTLY.
 */
static bool
needs_no_transaction(Node *stmt)
{
	ListCell   *lc;

	if (outside_for_both(stmt))
		return true;
	switch (nodeTag(stmt))
	{
		case T_ReindexStmt:
			foreach(lc, ((ReindexStmt *) stmt)->params)
				if (strcmp(((DefElem *) lfirst(lc))->defname,
						   "concurrently") == 0)
				return true;
			return false;
		case T_ClusterStmt:
			return ((ClusterStmt *) stmt)->relation == NULL;
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			{
				AlterTableCmd *cmd = lfirst(lc);

				if (cmd->subtype == AT_DetachPartition &&
					((PartitionCmd *) cmd->def)->concurrent)
					return true;
			}
			return false;
		default:
			return false;
	}
}

/*
 * Flyway's own list (PostgreSQLParser): those above, and DISCARD ALL; not
 * REINDEX TABLE CONCURRENTLY, which Flyway runs in a transaction.
 */
static bool
flyway_non_transactional(Node *stmt)
{
	return outside_for_both(stmt) ||
		(IsA(stmt, DiscardStmt) &&
		 ((DiscardStmt *) stmt)->target == DISCARD_ALL);
}

/*
 * Does the text mention a word that starts a statement of those above?  A
 * cheap test before parsing: most migrations mention none.
 */
static bool
may_hold_such(const char *text, int len)
{
	static const char *const words[] = {
		"concurrently", "vacuum", "database", "system", "tablespace",
		"subscription", "cluster", "reindex", "discard"
	};

	for (int i = 0; i < len; i++)
	{
		char		c = text[i] | 0x20;

		if (c != 'c' && c != 'v' && c != 'd' && c != 's' && c != 't' &&
			c != 'r')
			continue;
		for (int w = 0; w < (int) lengthof(words); w++)
		{
			int			n = strlen(words[w]);

			if (i + n <= len && pg_strncasecmp(text + i, words[w], n) == 0)
				return true;
		}
	}
	return false;
}

/*
 * The statements of text, or NIL when the text does not parse (the step
 * then fails when it runs, with the error named by file and line).
 */
static List *
parse_quietly(const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *stmts = NIL;

	PG_TRY();
	{
		stmts = raw_parser(text, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		stmts = NIL;
	}
	PG_END_TRY();
	return stmts;
}

/*
 * Sent as one query, as golang-migrate sends a file: several statements
 * run in one implicit transaction, and a lone statement that cannot run
 * in a transaction block runs outside one.
 */
bool
TrekFormatMustRunOutside(const char *text, int len)
{
	List	   *stmts;

	if (!may_hold_such(text, len))
		return false;
	stmts = parse_quietly(text);
	return list_length(stmts) == 1 &&
		needs_no_transaction(linitial_node(RawStmt, stmts)->stmt);
}

/*
 * Flyway: statement by statement outside a transaction when a statement is
 * one of its non-transactional ones, and an error, as in Flyway, when the
 * migration also has other statements.
 */
static bool
flyway_outside(const char *file, const char *text, int len)
{
	List	   *stmts;
	ListCell   *lc;
	int			nontx = 0;

	if (!may_hold_such(text, len))
		return false;
	stmts = parse_quietly(text);
	foreach(lc, stmts)
		nontx += flyway_non_transactional(lfirst_node(RawStmt, lc)->stmt);
	if (nontx > 0 && nontx < list_length(stmts))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("Flyway migration \"%s\" has both transactional and non-transactional statements",
						file),
				 errdetail("Flyway refuses such a migration too, unless its .conf file sets executeInTransaction."),
				 errhint("Put the non-transactional statements into a migration of their own, or add \"%s.conf\" with executeInTransaction=false.",
						 file)));
	return nontx > 0;
}

/*
 * Does folder have an entry name?  Flyway's .conf files are known from
 * the listing; the files in diesel's folders are looked for.
 */
static bool
folder_has(TrekFolder *folder, const char *name)
{
	if (folder->format == TREK_FORMAT_FLYWAY)
		return bsearch(&name, folder->companions, folder->ncompanions,
					   sizeof(char *), name_cmp) != NULL;
	return TrekFolderHas(folder, name);
}

/*
 * Before a step's file is read for a plan: diesel's down.sql is optional,
 * and its folder is not looked into when the folder is scanned, so the
 * edge down is there whether or not the file is.
 */
void
TrekFormatCheckFile(TrekFormat format, TrekFolder *folder, const char *file,
					bool up)
{
	if (format == TREK_FORMAT_DIESEL && !up && !folder_has(folder, file))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("diesel migration \"%.*s\" has no down.sql",
						(int) (strchr(file, '/') - file), file),
				 errdetail("A plan going down reverts it; diesel cannot revert it either."),
				 errhint("Add the down.sql, or name a target above its version.")));
}

/*
 * The text of a companion file (Flyway's .conf, diesel's metadata.toml),
 * or NULL when there is none.
 */
static char *
companion_text(TrekFolder *folder, const char *name)
{
	int			len;

	/* what a link leads to is read under the same rules as a migration */
	if (!folder_has(folder, name))
		return NULL;
	return TrekReadText(folder, name, &len);
}

/*
 * The value of key in a "key = value" or "key=value" file, lower-cased,
 * or NULL.  Lines starting with "#" are comments.
 */
static char *
setting_of(const char *text, const char *key)
{
	LineIter	it = {text, strlen(text), 0, 0, 0};
	int			klen = strlen(key);

	while (next_line(&it))
	{
		const char *l = text + it.start;
		int			n = it.end - it.start;
		int			i = 0;

		while (i < n && isspace((unsigned char) l[i]))
			i++;
		if (n - i < klen || memcmp(l + i, key, klen) != 0)
			continue;
		i += klen;
		while (i < n && isspace((unsigned char) l[i]))
			i++;
		if (i >= n || (l[i] != '=' && l[i] != ':'))
			continue;
		i++;
		while (i < n && isspace((unsigned char) l[i]))
			i++;
		while (n > i && isspace((unsigned char) l[n - 1]))
			n--;
		{
			char	   *v = pnstrdup(l + i, n - i);

			for (char *p = v; *p; p++)
				*p = pg_tolower((unsigned char) *p);
			return v;
		}
	}
	return NULL;
}

/*
 * What a step of format runs: text (file's whole text, len bytes, NUL
 * terminated) is cut down in place to the part the step runs, the rest
 * blanked so line numbers stay the file's.  *no_transaction says whether
 * it runs outside a transaction.  folder is where the files beside it
 * (Flyway's .conf, diesel's metadata.toml) are read when the plan is made;
 * NULL when a plan runs, which then keeps what *no_transaction says for
 * what those files decide.
 */
void
TrekFormatStep(TrekFormat format, TrekFolder *folder, const char *file,
			   bool up, char *text, int len, bool *no_transaction)
{
	bool		outside = false;

	switch (format)
	{
		case TREK_FORMAT_GOLANG_MIGRATE:
			outside = TrekFormatMustRunOutside(text, len);
			break;
		case TREK_FORMAT_SQLX:
			outside = len >= 17 && memcmp(text, "-- no-transaction", 17) == 0 &&
				TrekFormatMustRunOutside(text, len);
			break;
		case TREK_FORMAT_DBMATE:
			dbmate_section(file, up, text, len, &outside);
			outside = outside && TrekFormatMustRunOutside(text, len);
			break;
		case TREK_FORMAT_GOOSE:
			goose_section(file, up, text, len, &outside);
			break;
		case TREK_FORMAT_FLYWAY:
			if (folder == NULL)
				return;
			{
				char		name[NAME_MAX + 8];
				char	   *conf;
				char	   *v;

				snprintf(name, sizeof(name), "%s.conf", file);
				conf = companion_text(folder, name);
				v = conf ? setting_of(conf, "executeInTransaction") : NULL;

				if (v == NULL)
					outside = flyway_outside(file, text, len);
				else if (strcmp(v, "false") == 0)
					outside = true;
				else if (strcmp(v, "true") != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for executeInTransaction in \"%s.conf\": \"%s\"",
									file, v),
							 errhint("Use true or false.")));
			}
			break;
		case TREK_FORMAT_DIESEL:
			if (len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("diesel migration \"%s\" is empty", file),
						 errdetail("diesel refuses to run an empty migration.")));
			if (folder == NULL)
				return;
			/* metadata.toml matters only for a file that must run outside */
			if (TrekFormatMustRunOutside(text, len))
			{
				const char *slash = strchr(file, '/');
				char	   *meta = companion_text(folder,
												  psprintf("%.*s/metadata.toml",
														   (int) (slash - file), file));
				char	   *v = meta ? setting_of(meta, "run_in_transaction") : NULL;

				/* diesel: a metadata.toml without the key means false */
				outside = meta != NULL && (v == NULL || strcmp(v, "false") == 0);
			}
			break;
		default:
			return;
	}
	*no_transaction = outside;
}
