/*-------------------------------------------------------------------------
 *
 * folder.c
 *	  Collecting the migrations of a folder and reading their files.
 *
 * Scanning a folder looks at names only; file contents are read just for
 * the steps of a plan, so checking "am I at head?" never opens a file.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
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
#include "utils/memutils.h"

#include "folder.h"
#include "guard.h"
#include "parse.h"

#define TREK_READ_CHUNK 65536

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
 * Did the last file operation fail on a loop of symbolic links?  There is
 * no file there, which errcode_for_file_access() would call an internal
 * error (XX000).  Called among ereport()'s arguments, where errno is still
 * the failed call's (errstart() saves it for %m and changes nothing).
 */
static bool
loop_errno(void)
{
	return errno == ELOOP;
}

/*
 * A file name as a message can show it: a name that is not valid in the
 * database encoding would make the message invalid too, so such a name is
 * shown with its non-ASCII and control bytes as \xNN.
 */
static char *
printable_name(const char *name)
{
	StringInfoData buf;

	if (pg_verifymbstr(name, strlen(name), true))
		return pstrdup(name);
	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) name; *p; p++)
	{
		if (*p >= 0x80 || *p < 0x20)
			appendStringInfo(&buf, "\\x%02x", *p);
		else
			appendStringInfoChar(&buf, (char) *p);
	}
	return buf.data;
}

/*
 * Collect the migrations of folder dir (absolute and canonical), sorted by
 * file name so that nothing depends on the order the file system lists
 * entries in.
 */
TrekMigration *
TrekScanFolder(const char *dir, int *nmigrations)
{
	DIR		   *d;
	struct dirent *de;
	int			n = 0;
	int			cap = 64;
	TrekMigration *migrations = palloc(cap * sizeof(TrekMigration));
	bool		has_initial = false;
	List	   *invalid = NIL;
	ListCell   *lc;
	StringInfoData path;

	initStringInfo(&path);

	d = AllocateDir(dir);
	if (d == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open migration folder \"%s\": %m", dir)));

	while ((de = ReadDir(d, dir)) != NULL)
	{
		TrekName	name;
		TrekNameResult res;
		PGFileType	type;
		TrekMigration *m;

		CHECK_FOR_INTERRUPTS();

		res = TrekParseFileName(de->d_name, &name);
		if (res == TREK_NAME_IGNORED)
			continue;

		resetStringInfo(&path);
		appendStringInfo(&path, "%s/%s", dir, de->d_name);
		type = get_dirent_type(path.data, de, true, DEBUG1);
		if (type == PGFILETYPE_ERROR)
		{
			/* a dangling link, or a loop of links, named like a migration */
			struct stat st;

			if (stat(path.data, &st) != 0)
				ereport(ERROR,
						(loop_errno() ? errcode(ERRCODE_UNDEFINED_FILE) :
						 errcode_for_file_access(),
						 errmsg("could not stat migration file \"%s\": %m",
								path.data)));
			type = S_ISREG(st.st_mode) ? PGFILETYPE_REG : PGFILETYPE_UNKNOWN;
		}
		if (type != PGFILETYPE_REG)
			continue;			/* folders and other non-files */

		if (res == TREK_NAME_INVALID)
		{
			invalid = lappend(invalid, printable_name(de->d_name));
			continue;
		}

		if (n == cap)
		{
			if (cap >= (int) (MaxAllocSize / sizeof(TrekMigration) / 2))
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("migration folder \"%s\" has too many files",
								dir)));
			cap *= 2;
			migrations = repalloc(migrations, cap * sizeof(TrekMigration));
		}
		m = &migrations[n++];
		m->file = pstrdup(de->d_name);
		m->from = pnstrdup(de->d_name + name.from_start, name.from_len);
		m->to = pnstrdup(de->d_name + name.to_start, name.to_len);
		m->up = name.up;
		m->python = name.python;
		if (strcmp(m->from, "initial") == 0)
			has_initial = true;
	}
	FreeDir(d);

	/* warn in name order, not in the file system's order */
	list_sort(invalid, name_cmp);
	foreach(lc, invalid)
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("ignoring file \"%s\" in migration folder \"%s\"",
						(char *) lfirst(lc), dir),
				 errdetail("Migration file names look like \"YYYYMMDD_<from>_up_<to>.sql\" or \"YYYYMMDD_<from>_down_<to>.py\", where revision names are ASCII letters, digits and underscores.")));

	if (!has_initial)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" has no migration from revision \"initial\"",
						dir),
				 errhint("Every database starts at revision \"initial\"; add a file named like \"YYYYMMDD_initial_up_<revision>.sql\".")));

	qsort(migrations, n, sizeof(TrekMigration), migration_cmp);
	*nmigrations = n;
	return migrations;
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

/*
 * Open a migration file by its full path, after the folder rules allowed
 * it, and return its descriptor and size.  Plain read() calls on a transient file
 * (closed on abort like AllocateFile's) cost one system call per file less
 * than stdio, which matters when a plan has thousands of steps.
 */
static int
open_migration(const char *path, off_t *size)
{
	struct stat st;
	int			fd;

	/* opening a FIFO would wait for a writer, uninterruptibly: look first */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("migration \"%s\" is not a regular file", path)));

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(loop_errno() ? errcode(ERRCODE_UNDEFINED_FILE) :
				 errcode_for_file_access(),
				 errmsg("could not open migration file \"%s\": %m", path)));
	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat migration file \"%s\": %m", path)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("migration \"%s\" is not a regular file", path)));
	if (st.st_size > (off_t) TrekMaxFileSize * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("migration file \"%s\" is too large", path),
				 errdetail("The file has %lld bytes, more than \"%s\" (%d kB).",
						   (long long) st.st_size, "trek.max_file_size",
						   TrekMaxFileSize),
				 errhint("Split the migration into several files, or raise \"%s\".",
						 "trek.max_file_size")));
	*size = st.st_size;
	return fd;
}

/*
 * Read up to len bytes; fewer only if the file ends first.
 */
static size_t
read_migration(int fd, char *buf, size_t len, const char *path)
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
close_migration(int fd, const char *path)
{
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close migration file \"%s\": %m", path)));
}

static void
hash_update(pg_cryptohash_ctx *ctx, const char *buf, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) buf, len) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
}

static pg_cryptohash_ctx *
hash_begin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256: %s",
			 pg_cryptohash_error(ctx));
	return ctx;
}

static void
hash_end(pg_cryptohash_ctx *ctx, char *sha256)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	if (pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not finish SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	sha256_hex(digest, sha256);
}

/*
 * Open folder dir (absolute and canonical) for reading its files by name
 * with read_small().  Returns -1, reporting nothing, if that fails: files
 * are then read by full path, which reports any problem.  The descriptor
 * is closed by TrekCloseFolder() or at the end of the transaction.
 */
int
TrekOpenFolder(const char *dir)
{
	return OpenTransientFile(dir, O_RDONLY | O_DIRECTORY | PG_BINARY);
}

void
TrekCloseFolder(int dirfd)
{
	if (dirfd >= 0)
		(void) CloseTransientFile(dirfd);
}

/*
 * Read a small regular file of the folder open as dirfd, by its name: the
 * kernel then looks up one name instead of walking the folder's whole path
 * again for every file, which is a fair part of a trivial step's cost.
 *
 * The descriptor is a plain one that fd.c does not know, so nothing here
 * may throw while it is open.  Anything but a readable regular file of at
 * most TREK_READ_CHUNK bytes (and trek.max_file_size) gives NULL, with the
 * file closed, and the caller takes the general path, which reports errors.
 */
static char *
read_small(int dirfd, const char *file, size_t *len)
{
	struct stat st;
	char	   *buf;
	size_t		got = 0;
	ssize_t		r = 0;
	int			fd;

	if (dirfd < 0)
		return NULL;
	/* O_NONBLOCK: a FIFO put in the file's place must not make us wait */
	fd = openat(dirfd, file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | PG_BINARY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		st.st_size > TREK_READ_CHUNK ||
		st.st_size > (off_t) TrekMaxFileSize * 1024 ||
		(buf = palloc_extended(st.st_size + 1, MCXT_ALLOC_NO_OOM)) == NULL)
	{
		close(fd);
		return NULL;
	}
	while (got < (size_t) st.st_size)
	{
		r = read(fd, buf + got, st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	close(fd);
	if (r < 0)
	{
		pfree(buf);
		return NULL;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

/*
 * SHA-256 of a migration file as 64 lower-case hex digits (sha256 must have
 * room for TREK_SHA256_HEX_LEN + 1 bytes).  Small files are read by name in
 * folder dirfd (see read_small), others by full path in chunks of the size
 * fstat() reported, so memory use does not grow with the file; a file that
 * grows later gets another hash when trek_execute reads it.
 */
void
TrekHashFile(const char *dir, int dirfd, const char *file, char *sha256)
{
	char	   *path = psprintf("%s/%s", dir, file);
	pg_cryptohash_ctx *ctx;
	char	   *buf;
	size_t		len;

	TrekCheckFile(path);
	buf = read_small(dirfd, file, &len);
	if (buf != NULL)
	{
		ctx = hash_begin();
		hash_update(ctx, buf, len);
	}
	else
	{
		off_t		size;
		int			fd = open_migration(path, &size);
		size_t		chunk = (size_t) Max(Min(size, TREK_READ_CHUNK), 1);

		ctx = hash_begin();
		buf = palloc(chunk);
		while (size > 0)
		{
			size_t		got = read_migration(fd, buf, Min((off_t) chunk, size), path);

			CHECK_FOR_INTERRUPTS();
			if (got == 0)
				break;
			hash_update(ctx, buf, got);
			size -= got;
		}
		close_migration(fd, path);
	}
	pfree(buf);
	pfree(path);
	hash_end(ctx, sha256);
}

/*
 * Read a whole migration file into a NUL-terminated palloc'd buffer and
 * compute its SHA-256 on the way.  The contents are not checked for encoding
 * here: the caller does that so that errors can name the line.
 */
char *
TrekReadFile(const char *dir, int dirfd, const char *file, int *len,
			 char *sha256)
{
	char	   *path = psprintf("%s/%s", dir, file);
	pg_cryptohash_ctx *ctx;
	char	   *buf;
	size_t		got;

	TrekCheckFile(path);
	buf = read_small(dirfd, file, &got);
	if (buf == NULL)
	{
		off_t		size;
		int			fd = open_migration(path, &size);

		if (size > (off_t) (MaxAllocSize - 1))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("migration file \"%s\" is too large", path),
					 errdetail("Migration files are limited to %zu bytes.",
							   (size_t) (MaxAllocSize - 1))));

		buf = palloc((Size) size + 1);
		got = read_migration(fd, buf, (size_t) size, path);
		close_migration(fd, path);
		buf[got] = '\0';
	}
	pfree(path);

	ctx = hash_begin();
	hash_update(ctx, buf, got);
	hash_end(ctx, sha256);

	*len = (int) got;
	return buf;
}
