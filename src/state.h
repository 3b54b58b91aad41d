/*-------------------------------------------------------------------------
 *
 * state.h
 *	  trek's own state: the track lock, where a track is, who owns it, and
 *	  the history of applied steps.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_STATE_H
#define TREK_STATE_H

#include "executor/spi.h"

#include "types.h"

extern void TrekStateLock(const char *track, TrekTrackLock *lock,
						  bool session);
extern bool TrekStateLockHeld(TrekTrackLock *lock);
extern void TrekStateUnlock(TrekTrackLock *lock);
extern void TrekStateLockReleased(const char *file, const char *track);
extern void TrekPreventIfReadOnly(const char *what, const char *to_do,
								  const char *them);
extern char *TrekStateCurrent(const char *track);
extern char *TrekStateRead(const char *track, bool *owned, Oid *owner,
						   MemoryContext cxt);
extern void TrekStateCheckOwner(const char *track, bool owned, Oid owner,
								const char *what);

/*
 * For the rooms that keep trek's state (history.c, runrows.c): statements
 * on trek's tables run with the owner's rights, in a security-restricted
 * context, on tables that carry nothing trek did not create.
 */
/* what TrekStateOwnerEnter() changed, for TrekStateOwnerLeave() */
typedef struct TrekOwnerSave
{
	Oid			userid;
	int			sec;
	int			nestlevel;
} TrekOwnerSave;

extern SPIPlanPtr TrekStatePrepare(const char *sql, int nargs, Oid *argtypes);
extern Oid	TrekStateNamespace(void);
extern void TrekStateOwnerEnter(TrekOwnerSave *save);
extern void TrekStateOwnerLeave(TrekOwnerSave *save);
extern Oid	TrekStateOwnTable(Oid nsp, const char *name);
extern bool TrekStateIs01(Oid nsp);

#endif							/* TREK_STATE_H */
