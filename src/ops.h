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

extern void TrekOpsStatus(FunctionCallInfo fcinfo, const char *dir,
						  const char *track);
extern void TrekOpsVerify(const char *dir, const char *track);
extern char *TrekOpsStamp(const char *dir, const char *revision,
						  const char *track);
extern char *TrekOpsGraph(const char *dir, const char *format,
						  const char *track);

#endif							/* TREK_OPS_H */
