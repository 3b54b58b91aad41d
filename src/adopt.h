/*-------------------------------------------------------------------------
 *
 * adopt.h
 *	  Adopting a database another tool migrated: trek_adopt().
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_ADOPT_H
#define TREK_ADOPT_H

#include "types.h"

extern char *TrekAdopt(const TrekFolderRef *where, const char *track,
					   const char *state_table);

#endif							/* TREK_ADOPT_H */
