/*-------------------------------------------------------------------------
 *
 * python.c
 *	  Running Python migrations through PL/Python.
 *
 * A Python migration runs as a DO block in language plpython3u, through
 * SPI, inside the plan's transaction and with the caller's rights.  The
 * block is a few fixed lines that load trek's Python module
 * (src/python_shim.py, built into the library as base64 text) once per
 * session and hand it the migration's file name and source, both base64
 * encoded so that no text of the file can end the block early.
 *
 * The module runs run_migration(conn) and turns any exception into one
 * exception whose message starts with a header: the line of the migration
 * file the error came from, and context lines (the SQL statement that
 * failed, the traceback through the file).  Here that header is taken off
 * again and the error raised anew, with its own SQLSTATE, message, detail,
 * hint and context, so that the step's error context (in step.c) can name
 * the file and the Python line.
 *
 * PL/Python hands dates, times and intervals to Python as text, which the
 * module turns into datetime objects as asyncpg would.  So that the text
 * has one known form, a Python step runs with DateStyle's output set to
 * ISO (its field order kept) and IntervalStyle set to postgres, the
 * defaults, as if the step were a function with SET clauses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "catalog/pg_language.h"
#include "common/base64.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "compat.h"
#include "python.h"
#include "python_shim.h"		/* generated from python_shim.py */

#define TREK_PYTHON_LANGUAGE "plpython3u"

/* the class of the one exception the Python module lets out */
#define TREK_FAILURE_PREFIX "TrekMigrationFailure: "

/* how the DO block starts, and room for it around the two base64 texts */
#define TREK_BLOCK_START "DO LANGUAGE " TREK_PYTHON_LANGUAGE " $trek$"
#define TREK_BLOCK_OVERHEAD 1024

/* whether the Python module is loaded in this session's interpreter */
static bool module_loaded = false;

/*
 * Refuse a plan with Python steps, before any step runs, if this database
 * has no plpython3u or the current role may not use it.  trek never
 * creates the language itself: that is for a superuser to decide.
 */
void
TrekPythonCheck(const char *file, int step, int nsteps)
{
	HeapTuple	tup;
	Form_pg_language lang;
	Oid			langoid;
	bool		trusted;

	tup = SearchSysCache1(LANGNAME, CStringGetDatum(TREK_PYTHON_LANGUAGE));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("language \"%s\" is not installed in this database",
						TREK_PYTHON_LANGUAGE),
				 errdetail("Step %d of %d, \"%s\", is a Python migration, and trek runs Python migrations with PL/Python.",
						   step, nsteps, file),
				 errhint("Run CREATE EXTENSION %s as a superuser, then run the plan again; trek never installs a language by itself.",
						 TREK_PYTHON_LANGUAGE)));
	lang = (Form_pg_language) GETSTRUCT(tup);
	langoid = lang->oid;
	trusted = lang->lanpltrusted;
	ReleaseSysCache(tup);

	/* the test DO itself makes (commands/functioncmds.c ExecuteDoStmt) */
	if (trusted)
	{
		if (TrekLanguageUsage(langoid, GetUserId()) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to run Python migration \"%s\"",
							file),
					 errdetail("Python migrations run in language \"%s\", and the current role has no USAGE privilege on it.",
							   TREK_PYTHON_LANGUAGE)));
	}
	else if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to run Python migration \"%s\"",
						file),
				 errdetail("Python migrations run in language \"%s\", which is untrusted: only superusers may use it.",
						   TREK_PYTHON_LANGUAGE)));
}

static char *
encode_base64(const char *data, int len)
{
	int			enclen = pg_b64_enc_len(len);
	char	   *out = palloc(enclen + 1);
	int			n = TrekBase64Encode(data, len, out, enclen);

	if (n < 0)
		elog(ERROR, "could not encode migration as base64");
	out[n] = '\0';
	return out;
}

/*
 * The DO block that runs one migration.  Its text only ever holds base64
 * and fixed lines, so the dollar quote cannot be ended early.  The
 * module's text (some 40 kB) goes in only until the module is known to be
 * loaded in this session.
 */
static char *
python_block(const char *file, const char *text, int len)
{
	static char module[32];
	StringInfoData buf;

	if ((Size) len > (MaxAllocSize - sizeof(trek_python_shim) -
					  TREK_BLOCK_OVERHEAD) / 4 * 3)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Python migration \"%s\" is too large", file),
				 errdetail("Python migrations are limited to %zu bytes.",
						   (Size) (MaxAllocSize - sizeof(trek_python_shim) -
								   TREK_BLOCK_OVERHEAD) / 4 * 3)));

	/* the module's name changes with its text, so no stale copy is used */
	if (module[0] == '\0')
		snprintf(module, sizeof(module), "trek_python_%08x",
				 hash_bytes((const unsigned char *) trek_python_shim,
							sizeof(trek_python_shim) - 1));

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 TREK_BLOCK_START "\n"
					 "import sys\n"
					 "m = sys.modules.get(\"%s\")\n",
					 module);
	if (module_loaded)
		appendStringInfoString(&buf,
							   "if m is None:\n"
							   "    plpy.error(\"trek's Python module was removed from sys.modules\")\n");
	else
		appendStringInfo(&buf,
						 "if m is None:\n"
						 "    import base64, types\n"
						 "    m = types.ModuleType(\"%s\")\n"
						 "    exec(compile(base64.b64decode(\"%s\"),"
						 " \"trek python module\", \"exec\"), m.__dict__)\n"
						 "    sys.modules[m.__name__] = m\n",
						 module, trek_python_shim);
	appendStringInfo(&buf, "m.run(\"%s\", \"", encode_base64(file, strlen(file)));
	appendStringInfoString(&buf, encode_base64(text, len));
	appendStringInfoString(&buf, "\")\n$trek$");
	return buf.data;
}

/*
 * Take the module's header off an error message: "<line> <n>\n" and n
 * lines of context.  Returns false if msg does not come from the module.
 */
static bool
parse_failure(const char *msg, int *line, const char **context,
			  int *ctxlen, const char **message)
{
	const char *p;
	char	   *end;
	long		ln;
	long		n;

	if (msg == NULL ||
		strncmp(msg, TREK_FAILURE_PREFIX, strlen(TREK_FAILURE_PREFIX)) != 0)
		return false;
	p = msg + strlen(TREK_FAILURE_PREFIX);
	if (*p < '0' || *p > '9')
		return false;
	ln = strtol(p, &end, 10);
	if (*end != ' ' || ln < 0 || ln > INT_MAX)
		return false;
	p = end + 1;
	if (*p < '0' || *p > '9')
		return false;
	n = strtol(p, &end, 10);
	if (*end != '\n' || n < 0)
		return false;
	p = end + 1;
	*context = p;
	for (long i = 0; i < n; i++)
	{
		p = strchr(p, '\n');
		if (p == NULL)
			return false;
		p++;
	}
	*ctxlen = (n > 0) ? (int) (p - *context) - 1 : 0;
	*line = (int) ln;
	*message = p;
	return true;
}

/*
 * Raise the error of a failed DO block again, without PL/Python's class
 * prefix and context lines, keeping everything else (ThrowErrorData).
 */
static void
rethrow(ErrorData *edata, int *line)
{
	const char *message;
	const char *pycontext = NULL;
	int			pylen = 0;
	char	   *context = NULL;

	if (!parse_failure(edata->message, line, &pycontext, &pylen, &message))
	{
		/* whatever went wrong, send the module again next time */
		module_loaded = false;

		/*
		 * The block failed outside the module's care (PL/Python could not
		 * start, say): keep its message and the context lines from inside the
		 * block, not the block's text.
		 */
		message = edata->message ? edata->message : "unknown error";
		if (edata->context != NULL)
		{
			char	   *cut;

			context = pstrdup(edata->context);
			cut = strstr(context, TREK_BLOCK_START);
			if (cut != NULL)
			{
				/* cut from the start of the line that quotes the block */
				while (cut > context && cut[-1] != '\n')
					cut--;
				while (cut > context && cut[-1] == '\n')
					cut--;
				*cut = '\0';
			}
			if (context[0] == '\0')
				context = NULL;
		}
	}

	/*
	 * The same error, with the message and context lines cut as above; the
	 * error context callbacks of the caller add their lines again.
	 */
	edata->message = pstrdup(message);
	if (pylen > 0 && context != NULL)
		edata->context = psprintf("%.*s\n%s", pylen, pycontext, context);
	else if (pylen > 0)
		edata->context = pnstrdup(pycontext, pylen);
	else
		edata->context = context;
	ThrowErrorData(edata);
}

/*
 * Run one Python migration.  Needs SPI.  If it fails, *line is set to the
 * line of the file the error came from (0 if unknown) before the error is
 * raised again, for the caller's error context.
 */
void
TrekPythonRun(const char *file, const char *text, int len, int *line)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *block = python_block(file, text, len);
	int			nestlevel = -1;

	*line = 0;
	if (DateStyle != USE_ISO_DATES || IntervalStyle != INTSTYLE_POSTGRES)
	{
		nestlevel = NewGUCNestLevel();
		(void) set_config_option("datestyle",
								 DateOrder == DATEORDER_YMD ? "ISO, YMD" :
								 DateOrder == DATEORDER_DMY ? "ISO, DMY" :
								 "ISO, MDY",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("intervalstyle", "postgres",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}

	PG_TRY();
	{
		int			rc = SPI_execute(block, false, 0);

		if (rc != SPI_OK_UTILITY)
			elog(ERROR, "could not run Python migration: %s",
				 SPI_result_code_string(rc));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * Nothing runs between catching and raising the error again (the same
		 * error, reworded), so the transaction's abort cleans up as after
		 * PG_RE_THROW().
		 */
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		rethrow(edata, line);
	}
	PG_END_TRY();
	module_loaded = true;

	/* an error leaves the setting to the transaction's abort */
	if (nestlevel >= 0)
		AtEOXact_GUC(true, nestlevel);
}
