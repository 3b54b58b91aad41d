/*-------------------------------------------------------------------------
 *
 * ops.h
 *	  Operating a track: its status, verification, stamps and the picture
 *	  of its folder.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_OPS_H
#define TREK_OPS_H

#include "fmgr.h"

#include "types.h"

extern void TrekOpsStatus(FunctionCallInfo fcinfo, const TrekFolderRef *where,
						  const char *track);
extern void TrekOpsVerify(const TrekFolderRef *where, const char *track);
extern char *TrekOpsStamp(const TrekFolderRef *where, const char *revision,
						  const char *track);
extern char *TrekOpsGraph(const TrekFolderRef *where, const char *format,
						  const char *track);

#endif							/* TREK_OPS_H */
