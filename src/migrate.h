/*-------------------------------------------------------------------------
 *
 * migrate.h
 *	  trek_migrate(): one step, one commit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_MIGRATE_H
#define TREK_MIGRATE_H

#include "plan.h"

extern void TrekMigrateDefineSettings(void);
extern void TrekMigrate(bool atomic, TrekPlan *given,
						const TrekFolderRef *where, const char *target,
						const char *direction, const char *track);

#endif							/* TREK_MIGRATE_H */
