/*-------------------------------------------------------------------------
 *
 * format.h
 *	  Folders of other migration tools: golang-migrate, Flyway, dbmate,
 *	  goose, sqlx and diesel, read as they are.
 *
 *	  See format.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_FORMAT_H
#define TREK_FORMAT_H

#include "nodes/pg_list.h"

#include "folder.h"
#include "names.h"
#include "types.h"

/* trek.format: which format folders are read in */
extern int	TrekFormatSetting;
extern void TrekFormatDefineSetting(void);

extern const char *TrekFormatName(TrekFormat format);
extern const char *TrekFormatTitle(TrekFormat format);
extern TrekFormat TrekFormatFromName(const char *name);
extern TrekMigration *TrekFormatScan(TrekFolder *folder, int *nmigrations,
									 bool sorted, TrekRevisions **revs);
extern TrekMigration *TrekFormatScanAt(TrekFolder *folder, int *nmigrations,
									   bool sorted, TrekRevisions **revs,
									   const char *current);
extern char *TrekFormatVersionId(TrekFormat format, const char *version);
extern int	TrekFormatVersionCmp(TrekFormat format, const char *a,
								 const char *b);
extern bool TrekFormatStepFile(TrekFormat format, const char *file, bool up,
							   const char *from, const char *to);
extern void TrekFormatCheckFile(TrekFormat format, TrekFolder *folder,
								const char *file, bool up);
extern void TrekFormatStep(TrekFormat format, TrekFolder *folder,
						   const char *file, bool up, char *text, int len,
						   bool *no_transaction);
extern bool TrekFormatMustRunOutside(const char *text, int len);

#endif							/* TREK_FORMAT_H */
