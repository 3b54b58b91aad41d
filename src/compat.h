/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL majors trek supports, in one
 *	  place: the rooms call these names and never test PG_VERSION_NUM.
 *
 * Include after postgres.h and the headers named beside each shim.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TREK_COMPAT_H
#define TREK_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "trek needs PostgreSQL 15 or later"
#endif

/* the GUC check hook's extra: guc_malloc from 16 on (utils/guc.h) */
#if PG_VERSION_NUM >= 160000
#define TrekGucMalloc(size) guc_malloc(LOG, (size))
#else
#define TrekGucMalloc(size) malloc(size)
#endif

/* ownership and ACL checks by class from 16 on (utils/acl.h) */
#if PG_VERSION_NUM >= 160000
#define TrekLanguageUsage(langoid, roleid) \
	object_aclcheck(LanguageRelationId, (langoid), (roleid), ACL_USAGE)
#define TrekRelationOwner(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define TrekLanguageUsage(langoid, roleid) \
	pg_language_aclcheck((langoid), (roleid), ACL_USAGE)
#define TrekRelationOwner(relid, roleid) \
	pg_class_ownercheck((relid), (roleid))
#endif

/* pg_b64_encode takes uint8 from 18 on (common/base64.h) */
#if PG_VERSION_NUM >= 180000
#define TrekBase64Encode(data, len, out, outlen) \
	pg_b64_encode((const uint8 *) (data), (len), (out), (outlen))
#else
#define TrekBase64Encode(data, len, out, outlen) \
	pg_b64_encode((data), (len), (out), (outlen))
#endif

/* PortalRun lost its run_once argument in 18 (tcop/pquery.h) */
#if PG_VERSION_NUM >= 180000
#define TrekPortalRun(portal, dest, qc) \
	PortalRun((portal), FETCH_ALL, true, (dest), (dest), (qc))
#else
#define TrekPortalRun(portal, dest, qc) \
	PortalRun((portal), FETCH_ALL, true, true, (dest), (dest), (qc))
#endif

/* this backend's number among the PGPROCs: MyProcNumber from 17 on */
#if PG_VERSION_NUM >= 170000
#define TrekMyProcNumber() (MyProcNumber)
#else
#define TrekMyProcNumber() (MyProc->pgprocno)
#endif

/*
 * Named shared memory without shared_preload_libraries: the dynamic shared
 * memory registry from 17 on (storage/dsm_registry.h); before 17 there is
 * none, and TrekNamedSharedMemory gives NULL.
 */
#if PG_VERSION_NUM >= 170000
#define TREK_HAVE_DSM_REGISTRY 1
#define TrekNamedSharedMemory(name, size, init, found) \
	GetNamedDSMSegment((name), (size), (init), (found))
#else
#define TrekNamedSharedMemory(name, size, init, found) \
	((void) (found), (void *) NULL)
#endif

/* the module's magic block names trek and its version from 18 on */
#if PG_VERSION_NUM >= 180000
#define TREK_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "trek", .version = TREK_VERSION)
#else
#define TREK_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/*
 * ALTER TABLE ... ALTER COLUMN ... SET EXPRESSION from 17 on, and virtual
 * generated columns and NOT NULL as a table constraint from 18 on
 * (nodes/parsenodes.h, catalog/pg_attribute.h)
 */
#if PG_VERSION_NUM >= 170000
#define TREK_HAVE_SET_EXPRESSION 1
#endif
#if PG_VERSION_NUM >= 180000
#define TREK_HAVE_NOT_NULL_CONSTRAINT 1
#define TrekConstraintStored(c) ((c)->generated_kind == ATTRIBUTE_GENERATED_STORED)
#else
#define TrekConstraintStored(c) ((void) (c), true)
#endif

#endif							/* TREK_COMPAT_H */
