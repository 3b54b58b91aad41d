/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Who may read what: which migration folder, judged on what was
 *	  opened, and what was applied on which track.
 *
 * Reading files on the server is powerful, so trek follows core's rule for
 * pg_read_file: roles with the privileges of pg_read_server_files (and
 * superusers) may read any folder, everyone else only folders inside the
 * superuser-only setting trek.allowed_directories.
 *
 * A path that was checked can be swapped for a symbolic link before it is
 * opened, so the test is made on the descriptor instead: folder.c opens
 * first, and asks here whether the canonical path of what it holds lies
 * inside an allowed folder.  The setting is parsed and canonicalised once,
 * when it is set; its folders are resolved (symbolic links followed) once
 * per call that opens a migration folder.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_authid.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "compat.h"
#include "guard.h"
#include "parse.h"

char	   *TrekAllowedDirectories = NULL;
int			TrekMaxFileSize = TREK_DEFAULT_MAX_FILE_SIZE;
bool		TrekCheckApplied = true;

/*
 * The parsed setting: canonical absolute paths, each NUL-terminated, one
 * after the other, ending with an empty string.  Owned by the GUC machinery
 * (it is the setting's "extra").
 */
static const char *allowed_parsed = NULL;

static void *
guc_extra_alloc(size_t size)
{
	return TrekGucMalloc(size);
}

static bool
check_allowed_directories(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *dirs;
	ListCell   *lc;
	StringInfoData buf;
	char	   *block;

	if (!SplitDirectoriesString(raw, ',', &dirs))
	{
		GUC_check_errdetail("List syntax is invalid.");
		return false;
	}
	initStringInfo(&buf);
	foreach(lc, dirs)
	{
		char	   *d = lfirst(lc);

		if (!is_absolute_path(d))
		{
			GUC_check_errdetail("\"%s\" is not an absolute path.", d);
			return false;
		}
		canonicalize_path(d);
		appendBinaryStringInfo(&buf, d, strlen(d) + 1);
	}
	appendStringInfoChar(&buf, '\0');

	block = guc_extra_alloc(buf.len);
	if (block == NULL)
		return false;
	memcpy(block, buf.data, buf.len);
	*extra = block;
	return true;
}

static void
assign_allowed_directories(const char *newval, void *extra)
{
	allowed_parsed = extra;
}

void
TrekDefineSettings(void)
{
	DefineCustomStringVariable("trek.allowed_directories",
							   "Folders that roles without pg_read_server_files may read migrations from.",
							   "A comma-separated list of absolute paths.",
							   &TrekAllowedDirectories,
							   "",
							   PGC_SUSET,
							   0,
							   check_allowed_directories,
							   assign_allowed_directories,
							   NULL);
	DefineCustomIntVariable("trek.max_file_size",
							"Largest migration file trek reads.",
							"A migration is parsed as a whole before it runs, so memory grows with the size of the file.",
							&TrekMaxFileSize,
							TREK_DEFAULT_MAX_FILE_SIZE,
							1,
							(int) ((MaxAllocSize - 1) / 1024),
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL,
							NULL,
							NULL);
	DefineCustomBoolVariable("trek.check_applied",
							 "Refuse to plan while an applied migration file changed or is gone.",
							 "Planning (trek_plan, trek_migrate) compares the files of the steps in effect on the track with the folder, as trek_verify does.",
							 &TrekCheckApplied,
							 true,
							 PGC_USERSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
}

/*
 * Is the current user confined to trek.allowed_directories?
 */
bool
TrekGuardConfined(void)
{
	return !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES);
}

/*
 * The allowed folders as they are now, symbolic links resolved; one that
 * does not exist allows nothing.
 */
List *
TrekGuardRoots(void)
{
	List	   *roots = NIL;

	if (allowed_parsed == NULL)
		return NIL;
	for (const char *d = allowed_parsed; *d != '\0'; d += strlen(d) + 1)
	{
		char		real[PATH_MAX];

		if (realpath(d, real) != NULL)
			roots = lappend(roots, pstrdup(real));
	}
	return roots;
}

/*
 * Is path (absolute and canonical, links resolved) inside one of roots?
 */
bool
TrekGuardWithin(List *roots, const char *path)
{
	ListCell   *lc;

	foreach(lc, roots)
	{
		if (TrekPathWithin(lfirst(lc), path))
			return true;
	}
	return false;
}

/*
 * May a confined role be told why folder path (absolute and canonical)
 * could not be opened?  Only if the longest leading part of it that exists
 * lies in an allowed folder, and the first part that does not is no
 * symbolic link: a dangling or looping link could point anywhere, and its
 * error would tell what exists there.
 *
 * A canonical path has no "..", so if a leading part does not resolve, no
 * longer one does: the longest part that resolves is found by bisection, in
 * one buffer, so time and memory stay small whatever the path's length.
 */
bool
TrekGuardMayExplain(List *roots, const char *path)
{
	size_t		len = strlen(path);
	char	   *p = pstrdup(path);
	int		   *ends = palloc((len + 1) * sizeof(int));
	int			nends = 0;
	int			lo;
	int			hi;
	char		real[PATH_MAX];
	struct stat st;
	bool		link;

	/* ends of the leading parts "/a", "/a/b", ... */
	for (size_t i = 1; i <= len; i++)
		if (i == len || path[i] == '/')
			ends[nends++] = (int) i;

	/* parts [0, lo) resolve, parts [hi, nends) do not */
	lo = 0;
	hi = nends;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		char		save = p[ends[mid]];
		bool		ok;

		CHECK_FOR_INTERRUPTS();
		p[ends[mid]] = '\0';
		ok = realpath(p, real) != NULL;
		p[ends[mid]] = save;
		if (ok)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == nends)
		return realpath(path, real) != NULL && TrekGuardWithin(roots, real);

	/* the first part that does not resolve must not be a link */
	p[ends[lo]] = '\0';
	link = lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
	if (link)
		return false;

	/* the longest part that does */
	if (lo == 0)
		return TrekGuardWithin(roots, "/");
	p[ends[lo - 1]] = '\0';
	if (realpath(p, real) == NULL)
		return false;			/* it changed meanwhile */
	return TrekGuardWithin(roots, real);
}

/*
 * May the current user see what was applied on a track: the names of its
 * files, their SHA-256 (also as the answer "changed or not" to a file of
 * the caller's own), its history ids and its runs?  owned says whether the
 * track has an owner (see TrekStateRead), owner who it is.
 *
 * Roles with the privileges of the owner may, and superusers, who have
 * every role's; the same roles may execute, migrate or stamp on it.  A
 * track without an owner is open to every grantee, as it is for executing:
 * nothing was applied on it yet (or trek's objects are those of 0.1, which
 * have no owners), or a superuser removed its row from trek.tracks, after
 * which any grantee may claim it with a stamp.  A track whose owner was
 * dropped is seen by superusers only.
 */
bool
TrekGuardMaySeeTrack(bool owned, Oid owner)
{
	return !owned || has_privs_of_role(GetUserId(), owner);
}

void
TrekGuardDeny(const char *dir)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to read migrations in \"%s\"", dir),
			 errdetail("Only roles with privileges of the \"%s\" role may use folders outside \"%s\".",
					   "pg_read_server_files", "trek.allowed_directories"),
			 errhint("Folders are read on the database server. To migrate from a folder where the client runs, send the folder itself as jsonb: CALL trek_migrate(folder jsonb, target text).")));
}

/*
 * A path or file name as a message can show it: one that is not valid in
 * the database encoding would make the message invalid too (and a client
 * in another encoding would get a conversion error instead of trek's
 * message), so its non-ASCII and control bytes are shown as \xNN.
 */
char *
TrekPrintable(const char *name)
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
 * Canonical absolute path of what descriptor fd refers to, or NULL.  On
 * Linux the kernel tells it (/proc/self/fd); elsewhere, or where /proc is
 * missing, fallback (the name the object was opened by) is resolved.  Either
 * answer is accepted only if that path leads to the very object fd holds
 * (same device and inode), so a name swapped meanwhile cannot pass.
 */
char *
TrekGuardDescriptorPath(int fd, const char *fallback)
{
	struct stat held;
	struct stat named;
	char		link[64];
	char		real[PATH_MAX];
	ssize_t		n;

	if (fstat(fd, &held) != 0)
		return NULL;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, real, sizeof(real) - 1);
	if (n > 0 && real[0] == '/')
	{
		real[n] = '\0';
		if (stat(real, &named) == 0 && named.st_dev == held.st_dev &&
			named.st_ino == held.st_ino)
			return pstrdup(real);
	}
	if (fallback != NULL && realpath(fallback, real) != NULL &&
		stat(real, &named) == 0 && named.st_dev == held.st_dev &&
		named.st_ino == held.st_ino)
		return pstrdup(real);
	return NULL;
}
