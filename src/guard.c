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

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "guard.h"

char	   *TrekAllowedDirectories = NULL;

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
	MarkGUCPrefixReserved("trek");
}

static bool
may_read_anything(void)
{
	return has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES);
}

/*
 * Is path (canonical; resolved with realpath() if resolved) inside one of
 * the allowed folders?
 */
static bool
inside_allowed(const char *path, bool resolved)
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

		if (resolved)
		{
			if (realpath(allowed, real) == NULL)
				continue;		/* a missing allowed folder allows nothing */
			allowed = real;
		}
		if (path_is_prefix_of_path(allowed, path))
			return true;
	}
	return false;
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
		/* don't tell unprivileged roles what exists outside their folders */
		if (!privileged && !inside_allowed(path, false))
			deny(dir);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open migration folder \"%s\": %m", dir)));
	}
	if (!privileged && !inside_allowed(real, true))
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
		return;					/* opening it reports the problem */
	if (!inside_allowed(real, true))
		deny(path);
}
