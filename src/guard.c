/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Who may read which migration folder.
 *
 * Reading files on the server is powerful, so trek follows core's rule for
 * pg_read_file: roles with the privileges of pg_read_server_files (and
 * superusers) may read any folder, everyone else only folders inside the
 * superuser-only setting trek.allowed_directories.  Paths are resolved with
 * realpath() before the test, so neither ".." nor a symbolic link can lead
 * out of an allowed folder, and the test is repeated for every file read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "guard.h"
#include "parse.h"

char	   *TrekAllowedDirectories = NULL;
int			TrekMaxFileSize = TREK_DEFAULT_MAX_FILE_SIZE;

static bool
check_allowed_directories(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *dirs;
	ListCell   *lc;

	if (!SplitDirectoriesString(raw, ',', &dirs))
	{
		GUC_check_errdetail("List syntax is invalid.");
		return false;
	}
	foreach(lc, dirs)
	{
		char	   *d = lfirst(lc);

		if (!is_absolute_path(d))
		{
			GUC_check_errdetail("\"%s\" is not an absolute path.", d);
			return false;
		}
	}
	return true;
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
							   NULL,
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
	MarkGUCPrefixReserved("trek");
}

static bool
may_read_anything(void)
{
	return has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES);
}

/*
 * Is path (absolute, canonical, symbolic links resolved) inside one of the
 * allowed folders?  Each allowed folder is resolved the same way; one that
 * does not exist allows nothing.
 */
static bool
inside_allowed(const char *path)
{
	char	   *raw = pstrdup(TrekAllowedDirectories ? TrekAllowedDirectories : "");
	List	   *dirs;
	ListCell   *lc;

	if (!SplitDirectoriesString(raw, ',', &dirs))
		return false;
	foreach(lc, dirs)
	{
		char	   *allowed = lfirst(lc);
		char		real[PATH_MAX];

		canonicalize_path(allowed);
		if (realpath(allowed, real) == NULL)
			continue;
		if (TrekPathWithin(real, path))
			return true;
	}
	return false;
}

/*
 * May a role without pg_read_server_files be told why path (absolute and
 * canonical) cannot be resolved?  Only if the longest leading part of it
 * that resolves lies in an allowed folder, and the first part that does not
 * resolve is no symbolic link: a dangling or looping link could point
 * anywhere, and its error would tell what exists there.
 */
static bool
may_explain(const char *path)
{
	char	   *p = pstrdup(path);
	char	   *first_missing = NULL;
	char		real[PATH_MAX];
	struct stat st;

	while (realpath(p, real) == NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (strcmp(p, "/") == 0)
			return false;
		first_missing = pstrdup(p);
		get_parent_directory(p);
		if (p[0] == '\0')
			strcpy(p, "/");
	}
	if (!inside_allowed(real))
		return false;
	if (first_missing != NULL && lstat(first_missing, &st) == 0 &&
		S_ISLNK(st.st_mode))
		return false;
	return true;
}

static void
deny(const char *dir)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to read migrations in \"%s\"", dir),
			 errdetail("Only roles with privileges of the \"%s\" role may use folders outside \"%s\".",
					   "pg_read_server_files", "trek.allowed_directories")));
}

/*
 * Check that the current user may read migration folder dir and return its
 * canonical absolute path, with symbolic links resolved.
 */
char *
TrekCheckFolder(const char *dir)
{
	char	   *path;
	char		real[PATH_MAX];
	bool		privileged = may_read_anything();

	if (!is_absolute_path(dir))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration folder \"%s\" is not an absolute path", dir),
				 errhint("Give the full path of the folder on the database server.")));

	path = pstrdup(dir);
	canonicalize_path(path);

	if (realpath(path, real) == NULL)
	{
		int			save_errno = errno;

		/*
		 * Don't tell unprivileged roles what exists outside their folders:
		 * judge the part of the path that does exist.
		 */
		if (!privileged && !may_explain(path))
			deny(dir);
		errno = save_errno;
		ereport(ERROR,
				(save_errno == ELOOP ? errcode(ERRCODE_UNDEFINED_FILE) :
				 errcode_for_file_access(),
				 errmsg("could not open migration folder \"%s\": %m", dir)));
	}
	if (!privileged && !inside_allowed(real))
		deny(dir);

	return pstrdup(real);
}

/*
 * Check that the current user may read the file at path, which lies in a
 * folder already accepted by TrekCheckFolder but may be a symbolic link.
 */
void
TrekCheckFile(const char *path)
{
	char		real[PATH_MAX];

	if (may_read_anything())
		return;
	if (realpath(path, real) == NULL)
	{
		if (!may_explain(path))
			deny(path);
		return;					/* opening it reports the problem */
	}
	if (!inside_allowed(real))
		deny(path);
}
