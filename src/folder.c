/*-------------------------------------------------------------------------
 *
 * folder.c
 *	  Collecting the migrations of a folder and reading their files.
 *
 * Scanning a folder looks at names only; file contents are read just for
 * the steps of a plan, so checking "am I at head?" never opens a file.
 *
 * Names can be swapped for symbolic links between a check and an open, so
 * nothing is checked by name: the folder is opened first and judged by the
 * path of its descriptor; its entries are listed from that descriptor and
 * opened relative to it; a file is judged by what was opened, and hashed
 * and read from that same descriptor.  Nothing is opened in a way that
 * could wait (FIFOs), and for a role confined to trek.allowed_directories
 * nothing outside them is opened for reading, or even looked at: a link
 * that leads outside looks the same whatever is, or is not, at its end.
 *
 * Longer than most rooms: opening, scanning, reading and hashing share the
 * judging of what was opened by its descriptor (and its errors), which
 * would otherwise be exported for one caller each.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "common/file_utils.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/fd.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "folder.h"
#include "guard.h"
#include "parse.h"

#define TREK_READ_CHUNK 65536

#ifndef O_PATH
#define O_PATH (O_RDONLY | O_NONBLOCK)	/* no descriptor-only opens here */
#endif

static int
name_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

static int
migration_cmp(const void *a, const void *b)
{
	return strcmp(((const TrekMigration *) a)->file,
				  ((const TrekMigration *) b)->file);
}

/*
 * errcode for a failed file operation: a loop of symbolic links means there
 * is no file there, and a path component longer than NAME_MAX is a name too
 * long (as a path over PATH_MAX is), which errcode_for_file_access() would
 * both call internal errors (XX000).  Called among ereport()'s arguments,
 * where errno is still the failed call's (errstart() saves it for %m and
 * changes nothing).
 */
static int
file_errcode(void)
{
	if (errno == ELOOP)
		return errcode(ERRCODE_UNDEFINED_FILE);
	if (errno == ENAMETOOLONG)
		return errcode(ERRCODE_NAME_TOO_LONG);
	return errcode_for_file_access();
}

/*
 * Open migration folder dir for the current user and check it: the folder
 * is opened first (following symbolic links), then the canonical path of
 * the opened folder must lie inside trek.allowed_directories unless the
 * user may read any server file.  Errors for a folder that cannot be opened
 * are told to a confined user only where they say nothing about what
 * exists outside the allowed folders.  The descriptor is closed by
 * TrekFolderClose() or at the end of the transaction.
 */
TrekFolder *
TrekFolderOpen(const char *dir)
{
	TrekFolder *f = palloc0(sizeof(TrekFolder));
	char	   *path;

	if (!is_absolute_path(dir))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" is not an absolute path", dir),
				 errhint("Give the full path of the folder on the database server.")));

	path = pstrdup(dir);
	canonicalize_path(path);
	if (strlen(path) >= PATH_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("migration folder path is too long"),
				 errdetail("The path has %zu bytes after \".\" and \"..\" are folded, more than the server's limit of %d.",
						   strlen(path), PATH_MAX - 1)));

	f->confined = TrekGuardConfined();
	f->roots = f->confined ? TrekGuardRoots() : NIL;
	f->fd = OpenTransientFile(path, O_RDONLY | O_DIRECTORY | PG_BINARY);
	if (f->fd < 0)
	{
		int			save_errno = errno;

		if (f->confined && !TrekGuardMayExplain(f->roots, path))
			TrekGuardDeny(dir);
		errno = save_errno;
		ereport(ERROR,
				(file_errcode(),
				 errmsg("could not open migration folder \"%s\": %m", dir),
				 save_errno == ENOENT ?
				 errhint("The folder is looked for on the database server's file system, not the client's. To migrate from a folder where the client runs, send the folder itself as jsonb: CALL trek_migrate(folder jsonb, target text).") : 0));
	}

	f->path = TrekGuardDescriptorPath(f->fd, path);
	if (f->path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration folder \"%s\" changed while it was opened",
						dir),
				 errhint("Try again once the folder is in place.")));
	if (f->confined && !TrekGuardWithin(f->roots, f->path))
		TrekGuardDeny(dir);
	if (!pg_verifymbstr(f->path, strlen(f->path), true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("path of migration folder \"%s\" is not valid in encoding \"%s\"",
						TrekPrintable(f->path), GetDatabaseEncodingName()),
				 errdetail("Plans, history rows and messages hold the folder's path as text."),
				 errhint("Rename the folder, or the folders above it, to names valid in the database encoding.")));
	return f;
}

static int
sent_file_cmp(const void *a, const void *b)
{
	return strcmp(((const TrekSentFile *) a)->name,
				  ((const TrekSentFile *) b)->name);
}

/*
 * Check a file name of a sent folder: relative to the folder, components
 * separated by "/", none empty (so no trailing "/"), "." or "..", none over
 * NAME_MAX bytes, no NUL, valid in the database encoding.  jsonb holds
 * neither NUL nor invalid text, but a name is checked, not trusted.
 */
static void
check_sent_name(const char *name, int len)
{
	const char *printable;
	const char *p = name;
	const char *end = name + len;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sent migration folder has a file with an empty name")));
	if (memchr(name, '\0', len) != NULL ||
		!pg_verifymbstr(name, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("sent migration folder has a file name that is not valid text")));
	printable = pnstrdup(name, Min(len, TREK_MAX_DIR_LEN));
	if (len > TREK_MAX_DIR_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("file name \"%s...\" in the sent migration folder is too long",
						pnstrdup(name, 64)),
				 errdetail("It has %d bytes; a name has at most %d.",
						   len, TREK_MAX_DIR_LEN)));
	if (name[0] == '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file name \"%s\" in the sent migration folder is an absolute path",
						printable),
				 errhint("Name each file relative to the folder, as \"20240101_initial_up_a.sql\" or \"sub/b.sql\".")));
	while (p <= end)
	{
		const char *slash = memchr(p, '/', end - p);
		int			n = (int) ((slash ? slash : end) - p);

		if (n == 0 || (n == 1 && p[0] == '.') ||
			(n == 2 && p[0] == '.' && p[1] == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("file name \"%s\" in the sent migration folder is not a plain relative path",
							printable),
					 errdetail("Names are relative to the folder, their parts separated by \"/\"; no part may be empty (as after a trailing \"/\"), \".\" or \"..\".")));
		if (n > TREK_MAX_NAME_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("file name \"%s\" in the sent migration folder is too long",
							printable),
					 errdetail("A part of a name has at most %d bytes.",
							   TREK_MAX_NAME_LEN)));
		p += n + 1;
	}
}

/* an empty sent folder with room for n files */
static TrekFolder *
sent_folder(int n)
{
	TrekFolder *f = palloc0(sizeof(TrekFolder));

	f->path = TREK_SENT_DIR;
	f->fd = -1;
	f->sent = true;
	f->files = palloc(Max(n, 1) * sizeof(TrekSentFile));
	return f;
}

static const char *
json_type_name(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvBool:
			return "boolean";
		case jbvNumeric:
			return "number";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "array" : "object";
		default:
			return "value";
	}
}

/*
 * A folder sent by the client: a jsonb object whose keys are file names
 * relative to the folder and whose values are the files' text.  Every name
 * and value is checked before anything else happens; the texts stay where
 * they are in jb (nothing is copied), so jb must live as long as the folder.
 */
static TrekFolder *
open_sent(Jsonb *jb)
{
	TrekFolder *f;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int64		total = 0;
	char	   *name = NULL;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sent migration folder is not a JSON object"),
				 errhint("Send an object whose keys are the file names and whose values are the files' text.")));
	f = sent_folder(JB_ROOT_COUNT(jb));

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		TrekSentFile *sf;

		CHECK_FOR_INTERRUPTS();
		if (tok == WJB_KEY)
		{
			check_sent_name(v.val.string.val, v.val.string.len);
			name = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("file \"%s\" in the sent migration folder is not a string",
							name),
					 errdetail("Its value is a JSON %s; the value of each file is its text.",
							   json_type_name(&v))));
		total += v.val.string.len;
		if (total > TREK_SENT_MAX_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("sent migration folder is too large"),
					 errdetail("Its files hold more than %d bytes of text, the most a sent folder may hold.",
							   TREK_SENT_MAX_BYTES),
					 errhint("Migrate in several calls, each with a folder that reaches an intermediate revision, or put the folder on the server.")));
		sf = &f->files[f->nfiles++];
		sf->name = name;
		sf->text = v.val.string.val;
		sf->len = v.val.string.len;
	}
	qsort(f->files, f->nfiles, sizeof(TrekSentFile), sent_file_cmp);
	return f;
}

/*
 * Open the folder a function was given: on the server, or sent.
 */
TrekFolder *
TrekFolderOpenRef(const TrekFolderRef *ref)
{
	if (ref->sent != NULL)
		return open_sent(ref->sent);
	return TrekFolderOpen(ref->dir);
}

/*
 * The folder plan's steps are read from: its folder on the server, or, for
 * a plan made from a sent folder, the texts the plan carries (each checked
 * against its SHA-256 as a server file is when its step runs).
 */
TrekFolder *
TrekFolderOfPlan(const TrekPlan *plan)
{
	TrekFolder *f;

	if (strcmp(plan->dir, TREK_SENT_DIR) != 0)
		return TrekFolderOpen(plan->dir);

	f = sent_folder(plan->nsteps);
	for (int i = 0; i < plan->nsteps; i++)
	{
		TrekSentFile *sf = &f->files[f->nfiles++];

		sf->name = plan->steps[i].file;
		sf->text = plan->steps[i].text;
		sf->len = plan->steps[i].len;
	}
	qsort(f->files, f->nfiles, sizeof(TrekSentFile), sent_file_cmp);
	for (int i = 1; i < f->nfiles; i++)
		if (strcmp(f->files[i - 1].name, f->files[i].name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("malformed trek plan"),
					 errdetail("File \"%s\" is the file of two steps.",
							   f->files[i].name),
					 errhint("Pass the result of trek_plan() to trek_execute() unchanged.")));
	return f;
}

void
TrekFolderClose(TrekFolder *f)
{
	if (f->fd >= 0)
		(void) CloseTransientFile(f->fd);
	f->fd = -1;
}

/* what an entry of the folder is, as far as a migration is concerned */
typedef enum TrekEntryKind
{
	TREK_ENTRY_FILE,			/* a regular file, maybe through a link */
	TREK_ENTRY_DIR,				/* a folder: diesel's migrations are */
	TREK_ENTRY_OTHER,			/* a FIFO, device or socket: skipped */
	TREK_ENTRY_SEALED,			/* a link a confined user may not follow */
	TREK_ENTRY_ERROR			/* errno says why it cannot be looked at */
} TrekEntryKind;

/*
 * For a confined user: open what entry name of folder f leads to, without
 * reading it (O_PATH), and check that it lies inside an allowed folder.
 * Returns the raw descriptor, or -1 with *kind saying why not.  Reports no
 * error, so that no descriptor it holds can leak.
 */
static int
open_confined(TrekFolder *f, const char *name, TrekEntryKind *kind)
{
	struct stat st;
	char	   *real;
	int			fd;

	fd = openat(f->fd, name, O_PATH | O_CLOEXEC);
	if (fd < 0)
	{
		int			save_errno = errno;

		/* a missing or looping link could point anywhere: say nothing */
		if (fstatat(f->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			S_ISLNK(st.st_mode))
			*kind = TREK_ENTRY_SEALED;
		else
			*kind = TREK_ENTRY_ERROR;
		errno = save_errno;
		return -1;
	}
	real = TrekGuardDescriptorPath(fd, NULL);
	if (real == NULL || !TrekGuardWithin(f->roots, real))
	{
		close(fd);
		*kind = TREK_ENTRY_SEALED;
		return -1;
	}
	pfree(real);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		*kind = TREK_ENTRY_OTHER;
		return -1;
	}
	*kind = TREK_ENTRY_FILE;
	return fd;
}

/*
 * Kind of an entry that readdir() could not classify by itself (a link, or
 * a file system without d_type).
 */
static TrekEntryKind
entry_kind(TrekFolder *f, const char *name)
{
	struct stat st;

	if (f->confined)
	{
		TrekEntryKind kind;
		int			fd;

		if (fstatat(f->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return TREK_ENTRY_ERROR;
		if (!S_ISLNK(st.st_mode))
			return S_ISREG(st.st_mode) ? TREK_ENTRY_FILE :
				S_ISDIR(st.st_mode) ? TREK_ENTRY_DIR : TREK_ENTRY_OTHER;
		fd = open_confined(f, name, &kind);
		if (fd >= 0)
			close(fd);
		return kind;
	}
	if (fstatat(f->fd, name, &st, 0) != 0)
		return TREK_ENTRY_ERROR;
	return S_ISREG(st.st_mode) ? TREK_ENTRY_FILE :
		S_ISDIR(st.st_mode) ? TREK_ENTRY_DIR : TREK_ENTRY_OTHER;
}

/* the migrations of a folder being collected */
typedef struct TrekScan
{
	TrekMigration *migrations;
	int			n;
	int			cap;
	List	   *invalid;		/* printable names that break the grammar */
	bool		has_initial;	/* a migration from "initial" was seen */
	TrekRevisions *revs;		/* their revisions, numbered */
	TrekStrings names;			/* their file names */
	bool		trek_names;		/* read trek's own names */
	TrekForeignEntry *foreign;	/* names that may be another tool's */
	int			nforeign;
	int			capforeign;
} TrekScan;

/*
 * Could entry name (a folder, if dir) be another tool's migration?  A cheap
 * test while the folder is listed; format.c judges the names it keeps.
 * Versions start with a digit; Flyway's names with V, U or R.
 */
static bool
may_be_foreign(const char *name, bool dir)
{
	char		c = name[0];

	if (c >= '0' && c <= '9')
		return true;
	return !dir && (c == 'V' || c == 'U' || c == 'R') &&
		strstr(name, "__") != NULL;
}

/* keep entry name, which may be another tool's migration */
static void
add_foreign(TrekScan *scan, const char *name, bool dir, bool near_miss)
{
	TrekForeignEntry *e;

	if (scan->nforeign == scan->capforeign)
	{
		if (scan->capforeign >= (int) (MaxAllocSize / sizeof(TrekForeignEntry) / 2))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("migration folder has too many files")));
		/* as many as the folder's size says it has entries, at first */
		scan->capforeign = Max(scan->cap, 2 * scan->capforeign);
		scan->foreign = scan->foreign == NULL ?
			palloc(scan->capforeign * sizeof(TrekForeignEntry)) :
			repalloc(scan->foreign, scan->capforeign * sizeof(TrekForeignEntry));
	}
	e = &scan->foreign[scan->nforeign++];
	e->len = (int16) strlen(name);
	e->name = TrekStringsCopy(&scan->names, name, e->len);
	e->dir = dir;
	e->near_miss = near_miss;
	e->family = -2;				/* not known yet */
}

/*
 * Append one entry of the folder to the migrations (or the invalid names),
 * and keep the names that may be another tool's migrations.
 */
static void
add_entry(TrekFolder *f, const char *name, unsigned char d_type,
		  TrekScan *scan)
{
	TrekName	parsed;
	TrekNameResult res;
	TrekEntryKind kind;
	TrekMigration *m;
	bool		foreign;

	res = scan->trek_names ? TrekParseFileName(name, &parsed) :
		TREK_NAME_IGNORED;
	foreign = res != TREK_NAME_OK &&
		may_be_foreign(name, d_type == DT_DIR);
	if (res == TREK_NAME_IGNORED && !foreign)
		return;

	if (d_type == DT_REG)
		kind = TREK_ENTRY_FILE;
	else if (d_type == DT_DIR)
		kind = TREK_ENTRY_DIR;
	else if (d_type == DT_LNK || d_type == DT_UNKNOWN)
		kind = entry_kind(f, name);
	else
		kind = TREK_ENTRY_OTHER;

	if (kind == TREK_ENTRY_ERROR)
		ereport(ERROR,
				(file_errcode(),
				 errmsg("could not stat migration file \"%s/%s\": %m",
						f->path, TrekPrintable(name))));
	if (kind == TREK_ENTRY_OTHER)
		return;					/* FIFOs, devices and such */
	if (foreign && (kind != TREK_ENTRY_DIR || may_be_foreign(name, true)))
	{
		/* a near miss is warned about if the folder is trek's, at the end */
		add_foreign(scan, name, kind == TREK_ENTRY_DIR,
					res == TREK_NAME_INVALID && kind != TREK_ENTRY_DIR);
		return;
	}
	if (kind == TREK_ENTRY_DIR || res == TREK_NAME_IGNORED)
		return;
	/* a sealed link is an edge like any other; reading it is refused */

	if (res == TREK_NAME_INVALID)
	{
		scan->invalid = lappend(scan->invalid, TrekPrintable(name));
		return;
	}

	/* made at the first of trek's names: other tools' folders need neither */
	if (scan->migrations == NULL)
	{
		scan->migrations = palloc(scan->cap * sizeof(TrekMigration));
		scan->revs = TrekRevisionsCreate(scan->cap);
	}
	if (scan->n == scan->cap)
	{
		if (scan->cap >= (int) (MaxAllocSize / sizeof(TrekMigration) / 2))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("migration folder \"%s\" has too many files",
							f->path)));
		scan->cap *= 2;
		scan->migrations = repalloc(scan->migrations,
									scan->cap * sizeof(TrekMigration));
	}
	m = &scan->migrations[scan->n++];
	m->file = TrekStringsCopy(&scan->names, name, parsed.len);
	m->from_rev = TrekRevisionsAdd(scan->revs, name + parsed.from_start,
								   parsed.from_len);
	m->to_rev = TrekRevisionsAdd(scan->revs, name + parsed.to_start,
								 parsed.to_len);
	m->from = TrekRevisionsName(scan->revs, m->from_rev);
	m->to = TrekRevisionsName(scan->revs, m->to_rev);
	m->up = parsed.up;
	m->python = parsed.python;
	m->code = false;
	if (m->from_rev == 0)		/* "initial" */
		scan->has_initial = true;
}

/* getdents64() is declared by glibc 2.30 and later */
#if defined(__linux__) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 30)
#define TREK_HAVE_GETDENTS64 1
#endif
#endif

#ifdef TREK_HAVE_GETDENTS64

/*
 * Linux: read the entries straight from the folder's own descriptor with
 * getdents64(), through a buffer large enough for a few thousand entries at
 * a time.  readdir() would do the same system calls, but it also takes a
 * lock and does its bookkeeping for every single entry, which at 10,000
 * files is a noticeable part of planning.
 */
#define TREK_DIRENT_BUFFER 131072

static void
list_folder(TrekFolder *f, TrekScan *scan)
{
	char	   *buf = palloc(TREK_DIRENT_BUFFER);

	if (lseek(f->fd, 0, SEEK_SET) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read migration folder \"%s\": %m", f->path)));
	for (;;)
	{
		ssize_t		len;

		CHECK_FOR_INTERRUPTS();
		len = getdents64(f->fd, buf, TREK_DIRENT_BUFFER);
		if (len < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read migration folder \"%s\": %m",
							f->path)));
		if (len == 0)
			break;
		for (ssize_t off = 0; off < len;)
		{
			struct dirent64 *de = (struct dirent64 *) (buf + off);

			add_entry(f, de->d_name, de->d_type, scan);
			off += de->d_reclen;
		}
	}
	pfree(buf);
}

#else

static void
read_entries(TrekFolder *f, DIR *d, TrekScan *scan)
{
	for (;;)
	{
		struct dirent *de;

		CHECK_FOR_INTERRUPTS();
		errno = 0;
		de = readdir(d);
		if (de == NULL)
		{
			if (errno != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read migration folder \"%s\": %m",
								f->path)));
			return;
		}
		add_entry(f, de->d_name, de->d_type, scan);
	}
}

/*
 * List the entries of open folder f into scan, from a duplicate of the
 * folder's descriptor, so they are those of the folder that was checked.
 * The directory stream is closed on every path.
 */
static void
list_folder(TrekFolder *f, TrekScan *scan)
{
	DIR		   *d;
	int			dfd = dup(f->fd);

	if (dfd < 0 || (d = fdopendir(dfd)) == NULL)
	{
		int			save_errno = errno;

		if (dfd >= 0)
			close(dfd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open migration folder \"%s\": %m", f->path)));
	}
	rewinddir(d);
	PG_TRY();
	{
		read_entries(f, d, scan);
	}
	PG_CATCH();
	{
		closedir(d);
		PG_RE_THROW();
	}
	PG_END_TRY();
	closedir(d);
}

#endif

/*
 * Collect the migrations of open folder f, in the order the file system
 * lists them unless sorted is asked for (by file name).  Planning does not
 * need them sorted: the graph orders what it needs by file name itself.
 *
 * f->format says which names are read: trek's own (TREK_FORMAT_TREK), or
 * another tool's (none is returned; the names that may be its migrations
 * are kept in f->foreign), or either (TREK_FORMAT_AUTO: trek's, unless the
 * folder has none of those and some of the others).  Called by
 * TrekFormatScan(), which reads other tools' names.
 */
TrekMigration *
TrekScanFolder(TrekFolder *f, int *nmigrations, bool sorted,
			   TrekRevisions **revs)
{
	TrekScan	scan;
	ListCell   *lc;
	struct stat st;

	/*
	 * Guess the number of entries from the folder's size (on ext4 about 58
	 * bytes per entry of a 10,000-file folder, on tmpfs 20) so that the array
	 * is seldom copied to grow.
	 */
	scan.n = 0;
	scan.cap = 64;
	if (f->sent)
		scan.cap = Max(f->nfiles, 64);
	else if (fstat(f->fd, &st) == 0 && st.st_size / 40 > scan.cap)
		scan.cap = (int) Min(st.st_size / 40, 65536);
	scan.migrations = NULL;
	scan.invalid = NIL;
	scan.has_initial = false;
	scan.revs = NULL;
	scan.names.free = NULL;
	scan.names.left = 0;
	scan.trek_names = f->format == TREK_FORMAT_AUTO ||
		f->format == TREK_FORMAT_TREK;
	scan.foreign = NULL;
	scan.nforeign = scan.capforeign = 0;
	if (f->sent)
	{
		/*
		 * Files in subfolders are skipped, as a server folder's are, but for
		 * the files of diesel's migration folders.
		 */
		for (int i = 0; i < f->nfiles; i++)
		{
			const char *name = f->files[i].name;
			const char *slash = strchr(name, '/');

			if (slash == NULL)
				add_entry(f, name, DT_REG, &scan);
			else if (strchr(slash + 1, '/') == NULL &&
					 may_be_foreign(name, true))
				add_foreign(&scan, name, false, false);
		}
	}
	else
		list_folder(f, &scan);

	/*
	 * A folder with a file named as trek names migrations is trek's; others
	 * are another tool's: format.c reads them from the entries kept.
	 */
	f->foreign = scan.foreign;
	f->nforeign = scan.nforeign;
	if (scan.migrations == NULL)
	{
		scan.migrations = palloc(sizeof(TrekMigration));
		scan.revs = TrekRevisionsCreate(Max(scan.nforeign, 16));
	}
	if ((f->format == TREK_FORMAT_AUTO && scan.n == 0 && scan.nforeign > 0) ||
		(f->format != TREK_FORMAT_AUTO && f->format != TREK_FORMAT_TREK))
	{
		*nmigrations = 0;
		*revs = scan.revs;
		return scan.migrations;
	}
	f->format = TREK_FORMAT_TREK;

	/* warn in name order, not in the file system's order */
	for (int i = 0; i < scan.nforeign; i++)
		if (scan.foreign[i].near_miss)
			scan.invalid = lappend(scan.invalid,
								   TrekPrintable(scan.foreign[i].name));
	list_sort(scan.invalid, name_cmp);
	foreach(lc, scan.invalid)
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("ignoring file \"%s\" in migration folder \"%s\"",
						(char *) lfirst(lc), f->path),
				 errdetail("Migration file names look like \"YYYYMMDD_<from>_up_<to>.sql\" or \"YYYYMMDD_<from>_down_<to>.py\", where revision names are ASCII letters, digits and underscores.")));

	if (!scan.has_initial)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" has no migration from revision \"initial\"",
						f->path),
				 errhint("Every database starts at revision \"initial\"; add a file named like \"YYYYMMDD_initial_up_<revision>.sql\". A folder of golang-migrate, Flyway, dbmate, goose, sqlx or diesel is read as its tool names files: check the names, or name the tool with trek.format.")));

	if (sorted)
		qsort(scan.migrations, scan.n, sizeof(TrekMigration), migration_cmp);
	*nmigrations = scan.n;
	*revs = scan.revs;
	return scan.migrations;
}

static void
sha256_hex(const uint8 *digest, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
	{
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xF];
	}
	out[TREK_SHA256_HEX_LEN] = '\0';
}

static void
too_large(const char *path, int64 size)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("migration file \"%s\" is too large", path),
			 errdetail("The file has %lld bytes, more than \"%s\" (%d kB).",
					   (long long) size, "trek.max_file_size",
					   TrekMaxFileSize),
			 errhint("Split the migration into several files, or raise \"%s\".",
					 "trek.max_file_size")));
}

/*
 * Open migration file of folder f for reading: the one place where
 * migration files are opened, for hashing and for running alike.
 *
 * Everyone: relative to the folder's descriptor, without waiting on a FIFO
 * (O_NONBLOCK), and only a regular file is accepted, judged by fstat() of
 * the descriptor.  A confined user: first the file is opened without being
 * read (O_PATH) and checked to lie inside an allowed folder, then that very
 * file is opened for reading through its descriptor (/proc/self/fd), or,
 * without /proc, by name again and accepted only if it is the same file
 * (device and inode).
 *
 * Returns a plain descriptor, which the caller closes on every path (see
 * load_file); this function reports errors only while it holds none.
 */
static int
open_migration(TrekFolder *f, const char *file, const char *path,
			   struct stat *st)
{
	const int	flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | PG_BINARY;
	int			fd;
	int			save_errno;
	const char *refused = NULL;

	if (f->confined)
	{
		TrekEntryKind kind;
		int			pfd = open_confined(f, file, &kind);
		struct stat pst;
		char		link[64];

		if (pfd < 0)
		{
			if (kind == TREK_ENTRY_SEALED)
				TrekGuardDeny(path);
			if (kind == TREK_ENTRY_OTHER)
				ereport(ERROR,
						(errcode(ERRCODE_WRONG_OBJECT_TYPE),
						 errmsg("migration \"%s\" is not a regular file", path)));
			ereport(ERROR,
					(file_errcode(),
					 errmsg("could not open migration file \"%s\": %m", path)));
		}
		snprintf(link, sizeof(link), "/proc/self/fd/%d", pfd);
		fd = open(link, flags);
		if (fd < 0 && errno == ENOENT)
			fd = openat(f->fd, file, flags);
		save_errno = errno;
		if (fd >= 0 &&
			(fstat(pfd, &pst) != 0 || fstat(fd, st) != 0 ||
			 pst.st_dev != st->st_dev || pst.st_ino != st->st_ino))
		{
			close(fd);
			fd = -1;
			refused = "changed";
		}
		close(pfd);
	}
	else
	{
		fd = openat(f->fd, file, flags);
		save_errno = errno;
		if (fd >= 0 && fstat(fd, st) != 0)
		{
			save_errno = errno;
			close(fd);
			fd = -1;
		}
	}

	if (fd >= 0 && !S_ISREG(st->st_mode))
	{
		close(fd);
		fd = -1;
		refused = "type";
	}
	if (fd >= 0 && st->st_size > (off_t) TrekMaxFileSize * 1024)
	{
		close(fd);
		fd = -1;
		refused = "size";
	}
	if (fd >= 0)
		return fd;

	/* no descriptor is held from here on */
	if (refused == NULL)
	{
		errno = save_errno;
		ereport(ERROR,
				(file_errcode(),
				 errmsg("could not open migration file \"%s\": %m", path)));
	}
	if (strcmp(refused, "changed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration file \"%s\" changed while it was opened", path),
				 errhint("Try again once the folder is in place.")));
	if (strcmp(refused, "type") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("migration \"%s\" is not a regular file", path)));
	too_large(path, st->st_size);
	return -1;					/* keep compiler quiet */
}

/*
 * Read up to len bytes; fewer only if the file ends first.
 */
static size_t
read_chunk(int fd, char *buf, size_t len, const char *path)
{
	size_t		got = 0;

	while (got < len)
	{
		ssize_t		r = read(fd, buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read migration file \"%s\": %m", path)));
		if (r == 0)
			break;
		got += r;
	}
	return got;
}

static void
hash_update(pg_cryptohash_ctx *ctx, const char *buf, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) buf, len) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
}

static void
hash_begin(pg_cryptohash_ctx *ctx)
{
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256: %s",
			 pg_cryptohash_error(ctx));
}

static void
hash_end(pg_cryptohash_ctx *ctx, uint8 *digest)
{
	if (pg_cryptohash_final(ctx, digest, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not finish SHA-256: %s", pg_cryptohash_error(ctx));
}

/* a migration file being read */
typedef struct TrekLoad
{
	int			fd;
	const char *path;
	off_t		size;			/* as fstat() reported it */
	bool		keep;			/* return the whole contents */
	pg_cryptohash_ctx *ctx;
	char	   *buf;
	size_t		total;			/* bytes read */
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	bool		python;			/* a Python migration */
	bool		no_transaction; /* starts with the no-transaction marker */
} TrekLoad;

static void
read_and_hash(TrekLoad *load)
{
	hash_begin(load->ctx);
	if (load->keep)
	{
		load->buf = palloc((Size) load->size + 1);
		load->total = read_chunk(load->fd, load->buf, (size_t) load->size,
								 load->path);
		hash_update(load->ctx, load->buf, load->total);
		load->buf[load->total] = '\0';
		load->no_transaction = TrekNoTransactionMarker(load->buf, load->total,
													   load->python);
	}
	else
	{
		off_t		left = load->size;
		size_t		chunk = (size_t) Max(Min(left, TREK_READ_CHUNK), 1);
		char	   *buf = palloc(chunk);

		while (left > 0)
		{
			size_t		got;

			CHECK_FOR_INTERRUPTS();
			got = read_chunk(load->fd, buf, Min((off_t) chunk, left),
							 load->path);
			if (got == 0)
				break;
			if (load->total == 0)
				load->no_transaction = TrekNoTransactionMarker(buf, got,
															   load->python);
			hash_update(load->ctx, buf, got);
			left -= got;
			load->total += got;
		}
		pfree(buf);
	}
	hash_end(load->ctx, load->digest);
}

/* the sent file of folder f named file, or an error */
static TrekSentFile *
sent_file(TrekFolder *f, const char *file)
{
	TrekSentFile key;
	TrekSentFile *sf;

	key.name = (char *) file;
	sf = bsearch(&key, f->files, f->nfiles, sizeof(TrekSentFile),
				 sent_file_cmp);
	if (sf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("migration file \"%s\" is not in the folder sent by the client",
						file)));
	return sf;
}

/*
 * Does folder f have an entry name (a file of a sent folder; on the server,
 * an entry of the folder, not followed if it is a link)?
 */
bool
TrekFolderHas(TrekFolder *f, const char *name)
{
	struct stat st;
	TrekSentFile key;

	if (!f->sent)
		return fstatat(f->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	key.name = (char *) name;
	return bsearch(&key, f->files, f->nfiles, sizeof(TrekSentFile),
				   sent_file_cmp) != NULL;
}

/*
 * The text of file in sent folder f (len bytes, not NUL-terminated), which
 * lives as long as the jsonb the folder was sent in.
 */
const char *
TrekSentText(TrekFolder *f, const char *file, int *len)
{
	TrekSentFile *sf = sent_file(f, file);

	*len = sf->len;
	return sf->text;
}

/*
 * load_migration() for a sent folder: the text is in memory already.  The
 * folder's SHA-256 context is used when a caller hashing many files set
 * one (TrekDriftFind): creating one per file is most of the cost.
 */
static char *
load_sent(TrekFolder *f, const char *file, bool keep, int *len, char *sha256,
		  bool *no_transaction)
{
	TrekSentFile *sf = sent_file(f, file);
	size_t		flen = strlen(file);
	pg_cryptohash_ctx *ctx = f->hash;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *buf;

	if ((int64) sf->len > (int64) TrekMaxFileSize * 1024)
		too_large(psprintf("%s/%s", f->path, file), sf->len);

	if (ctx == NULL)
		ctx = pg_cryptohash_create(PG_SHA256);
	hash_begin(ctx);
	hash_update(ctx, sf->text, sf->len);
	hash_end(ctx, digest);
	if (ctx != f->hash)
		pg_cryptohash_free(ctx);
	sha256_hex(digest, sha256);
	/* a migration's name ends in ".sql" or ".py" (TrekParseFileName) */
	*no_transaction = TrekNoTransactionMarker(sf->text, sf->len,
											  flen > 3 && strcmp(file + flen - 3, ".py") == 0);
	if (len != NULL)
		*len = sf->len;
	if (!keep)
		return NULL;
	buf = palloc((Size) sf->len + 1);
	memcpy(buf, sf->text, sf->len);
	buf[sf->len] = '\0';
	return buf;
}

/*
 * Open a migration file, hash it and, if keep, return its whole contents
 * NUL-terminated (else NULL, and only one chunk of it is in memory at a
 * time).  The size fstat() reported is what is read: a file that grows
 * meanwhile gets another hash at its next read.
 */
static char *
load_migration(TrekFolder *f, const char *file, bool keep, int *len, char *sha256,
			   bool *no_transaction)
{
	TrekLoad	load;
	struct stat st;
	TrekName	name;

	if (f->sent)
		return load_sent(f, file, keep, len, sha256, no_transaction);
	memset(&load, 0, sizeof(load));
	load.path = psprintf("%s/%s", f->path, file);
	load.keep = keep;
	load.python = TrekParseFileName(file, &name) == TREK_NAME_OK && name.python;
	load.fd = open_migration(f, file, load.path, &st);
	load.size = st.st_size;
	PG_TRY();
	{
		load.ctx = pg_cryptohash_create(PG_SHA256);
		read_and_hash(&load);
	}
	PG_CATCH();
	{
		close(load.fd);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (close(load.fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close migration file \"%s\": %m",
						load.path)));
	pg_cryptohash_free(load.ctx);
	sha256_hex(load.digest, sha256);
	if (len != NULL)
		*len = (int) load.total;
	*no_transaction = load.no_transaction;
	return load.buf;
}

/*
 * SHA-256 of a migration file as 64 lower-case hex digits (sha256 must have
 * room for TREK_SHA256_HEX_LEN + 1 bytes), read in chunks so that memory
 * use does not grow with the file; *no_transaction says whether its first
 * line is the no-transaction marker.
 */
void
TrekHashFile(TrekFolder *f, const char *file, char *sha256,
			 bool *no_transaction)
{
	(void) load_migration(f, file, false, NULL, sha256, no_transaction);
}

/*
 * The whole text of a file of folder f, NUL-terminated, *len bytes: for
 * reading a file without keeping its SHA-256 (another tool's companion
 * files, or a migration whose annotations are looked at).
 */
char *
TrekReadText(TrekFolder *f, const char *file, int *len)
{
	char		sha256[TREK_SHA256_HEX_LEN + 1];
	bool		marker;

	return load_migration(f, file, true, len, sha256, &marker);
}

/*
 * Read a whole migration file into a NUL-terminated palloc'd buffer and
 * compute its SHA-256 on the way.  The contents are not checked for encoding
 * here: the caller does that so that errors can name the line.
 */
char *
TrekReadFile(TrekFolder *f, const char *file, int *len, char *sha256,
			 bool *no_transaction)
{
	return load_migration(f, file, true, len, sha256, no_transaction);
}
