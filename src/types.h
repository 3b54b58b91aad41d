/*-------------------------------------------------------------------------
 *
 * types.h
 *	  The types and bounds that several of trek's rooms share: a folder's
 *	  migrations, plans, runs, history rows and the track lock.  Types only:
 *	  no functions, so that every room can include it whatever its place.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_TYPES_H
#define TREK_TYPES_H

#include <limits.h>

#include "datatype/timestamp.h"
#include "storage/lock.h"
#include "utils/jsonb.h"

#define TREK_SHA256_HEX_LEN 64

/*
 * The tools whose folders trek reads (format.c); TREK_FORMAT_AUTO is only
 * a setting: recognise the format from the folder.
 */
typedef enum TrekFormat
{
	TREK_FORMAT_AUTO,
	TREK_FORMAT_TREK,			/* asyncpg-trek's, trek's own */
	TREK_FORMAT_GOLANG_MIGRATE,
	TREK_FORMAT_FLYWAY,
	TREK_FORMAT_DBMATE,
	TREK_FORMAT_GOOSE,
	TREK_FORMAT_SQLX,
	TREK_FORMAT_DIESEL
} TrekFormat;

/* one migration file of a folder: an edge of its revision graph */
typedef struct TrekMigration
{
	char	   *file;			/* base name */
	char	   *from;
	char	   *to;
	int			from_rev;		/* numbers of from and to in the scan's */
	int			to_rev;			/* TrekRevisions */
	bool		up;
	bool		python;
	bool		code;			/* another tool's code (goose's .go) */
} TrekMigration;

/*
 * A folder as a function is given it: a path on the server, or the folder
 * itself sent by the client as a jsonb object of file names and texts.
 */
typedef struct TrekFolderRef
{
	const char *dir;			/* a path on the server, or NULL */
	Jsonb	   *sent;			/* the folder sent, or NULL */
} TrekFolderRef;

/*
 * What trek.history, trek.runs, plans and messages hold for the folder of
 * a sent folder's steps: not a path (those are absolute), so never taken
 * for one.  A sent folder holds at most TREK_SENT_MAX_BYTES of file text.
 */
#define TREK_SENT_DIR "(sent by the client)"
#define TREK_SENT_MAX_BYTES (128 * 1024 * 1024)

#define TREK_PLAN_FORMAT 1

/*
 * Bounds on what a plan carries, checked by trek_plan and again when a plan
 * comes back as jsonb, before anything is written.  A track name is stored
 * in every history and runs row; a file name is one path component
 * (NAME_MAX), and a revision is part of one; the folder is a path trek can
 * open (PATH_MAX - 1 bytes after "." and ".." are folded).  The step and
 * size bounds are several times what a folder of 100,000 revisions plans.
 */
#define TREK_MAX_TRACK_LEN 255
#define TREK_MAX_NAME_LEN 255
#define TREK_MAX_DIR_LEN (PATH_MAX - 1)
#define TREK_PLAN_MAX_STEPS 500000
#define TREK_PLAN_MAX_BYTES (192 * 1024 * 1024)

/* which edges a plan follows; TREK_AUTO is only asked for, never planned */
typedef enum TrekDirection
{
	TREK_NONE,					/* already at the target: no steps */
	TREK_UP,
	TREK_DOWN,
	TREK_AUTO,					/* up if that reaches the target, else down */
	TREK_STAMP					/* a history row only: no migration ran */
} TrekDirection;

typedef struct TrekStep
{
	char	   *file;
	char	   *from;
	char	   *to;
	bool		python;
	bool		no_transaction; /* runs outside a transaction (trek_migrate) */
	char		sha256[TREK_SHA256_HEX_LEN + 1];
	const char *text;			/* a sent folder's plan carries the file's */
	int			len;			/* text (len bytes, not NUL-terminated) */
	/* what the safety gate found (check.c), before the plan runs: */
	char	   *accepted;		/* hazards its "-- trek:allow" lines accept,
								 * comma-separated, or NULL */
	int			nblocking;		/* relations it locks in a mode that blocks */
	Oid		   *blocking;		/* reads or writes, and the modes */
	LOCKMODE   *blocking_modes;
} TrekStep;

typedef struct TrekPlan
{
	char	   *track;
	char	   *dir;
	char	   *from;
	char	   *to;
	TrekDirection direction;	/* TREK_UP, TREK_DOWN or TREK_NONE */
	TrekFormat	format;			/* of the folder: whose rules steps follow */
	int			nsteps;
	TrekStep   *steps;
} TrekPlan;

/* longest names and message a run's record keeps, in bytes with the NUL */
#define TREK_RUN_NAME_LEN (TREK_MAX_NAME_LEN + 1)
#define TREK_RUN_DIR_LEN (TREK_MAX_DIR_LEN + 1)
#define TREK_RUN_MESSAGE_LEN 1024

/* a run's state, as trek.runs spells it */
#define TREK_RUN_RUNNING "running"
#define TREK_RUN_DONE "done"
#define TREK_RUN_FAILED "failed"
#define TREK_RUN_INTERRUPTED "interrupted"

/* one run, as trek.runs records it; strings cut to fit */
typedef struct TrekRunRecord
{
	int64		id;
	Oid			database;
	Oid			extension;		/* trek's pg_extension row when it began */
	Oid			owner;			/* the track's owner, or InvalidOid */
	Oid			run_by_id;
	int			pid;
	TimestampTz backend_start;
	int			steps_done;
	int			steps_planned;
	int			line;			/* of the error in current_file, or 0 */
	TimestampTz started_at;
	TimestampTz current_since;	/* 0: none */
	TimestampTz finished_at;	/* 0: none */
	char		state[16];
	char		sqlstate[6];
	char		track[TREK_RUN_NAME_LEN];
	char		dir[TREK_RUN_DIR_LEN];
	char		from[TREK_RUN_NAME_LEN];
	char		target[TREK_RUN_NAME_LEN];
	char		current_file[TREK_RUN_NAME_LEN];
	char		run_by[NAMEDATALEN];
	char		message[TREK_RUN_MESSAGE_LEN];
} TrekRunRecord;

/* one row of trek.history */
typedef struct TrekHistoryRow
{
	int64		id;
	char	   *from;
	char	   *to;
	TrekDirection direction;	/* TREK_UP, TREK_DOWN or TREK_STAMP */
	char	   *file;			/* NULL for a stamp */
	char	   *sha256;			/* NULL for a stamp */
} TrekHistoryRow;

/*
 * What planning, trek_status and trek_verify take of a track's past
 * (history.c): the revision it is at; the steps in effect, oldest first,
 * which "-N" goes back along and whose files are checked against the
 * folder when check is set; its owner, and whether the caller may see the
 * steps (a role with the privileges of that owner).
 */
typedef struct TrekTrail
{
	char	   *current;
	TrekHistoryRow *rows;
	int			n;
	Oid			owner;			/* InvalidOid: none yet */
	bool		visible;
	bool		check;
} TrekTrail;

/* the two parts of a track's lock (state.c) */
typedef struct TrekTrackLock
{
	LOCKTAG		advisory;		/* advisory: survives aborts */
	LOCKTAG		held;			/* default method: SQL cannot release it */
} TrekTrackLock;

#endif							/* TREK_TYPES_H */
