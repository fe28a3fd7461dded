/*-------------------------------------------------------------------------
 *
 * tenant_isolation.c
 *	  Library entry point: _PG_init, the load check, small shared helpers.
 *
 * The library must be loaded through shared_preload_libraries.  _PG_init
 * finishes every check before installing the first hook, so a library that
 * refuses to load leaves no half-installed hooks behind.  When the library is
 * loaded any other way (for instance on demand by a call to one of the SQL
 * functions), no hook is installed and every SQL function that depends on
 * the hooks refuses to run; protected tables then stay closed through their
 * row level security fallback.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/tenant_isolation.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "tenant_isolation.h"

PG_MODULE_MAGIC;

/* True once _PG_init ran inside shared_preload_libraries processing. */
bool		ti_preloaded = false;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(ti_assert_preloaded);

/*
 * _PG_init
 *		Define the GUCs and install the hooks, preloaded only.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	ti_define_context_gucs();
	ti_jwt_init();
	ti_audit_init();
	ti_limits_init();
	ti_keys_init();
	ti_provision_init();
	ti_citus_define_gucs();
	MarkGUCPrefixReserved("tenant_isolation");

	ti_install_shmem_hooks();
	ti_catalog_init();
	ti_install_planner_hooks();
	ti_install_executor_hooks();
	ti_citus_init();
	ti_install_utility_hook();
	ti_install_schema_tier_hook();
	ti_install_largeobject_hooks();
	ti_install_denial_hooks();

	ti_preloaded = true;
}

/*
 * ti_assert_preloaded
 *		Called by the install script: CREATE EXTENSION fails without preload.
 */
Datum
ti_assert_preloaded(PG_FUNCTION_ARGS)
{
	if (!ti_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_isolation must be loaded via shared_preload_libraries"),
				 errhint("Add tenant_isolation to shared_preload_libraries in postgresql.conf and restart the server.")));
	PG_RETURN_VOID();
}

/*
 * ti_uuid_to_cstring
 *		Canonical text form of a uuid, palloc'd.
 */
char *
ti_uuid_to_cstring(const pg_uuid_t *u)
{
	/* what uuid_out writes, without its StringInfo (a login calls this) */
	static const char hex[] = "0123456789abcdef";
	char	   *buf = palloc(2 * UUID_LEN + 5);
	char	   *p = buf;
	int			i;

	for (i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->data[i] >> 4];
		*p++ = hex[u->data[i] & 0x0F];
	}
	*p = '\0';
	return buf;
}

/*
 * ti_uuid_from_cstring
 *		Parse a uuid without raising an error; false when s is not one.
 *
 * Accepts only the canonical 8-4-4-4-12 form (upper or lower case hex), the
 * form uuid_out produces and tokens carry.
 */
bool
ti_uuid_from_cstring(const char *s, pg_uuid_t *out)
{
	int			i,
				j = 0;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		char		c = s[i];
		int			v;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (c != '-')
				return false;
			continue;
		}
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return false;
		if (j % 2 == 0)
			out->data[j / 2] = (unsigned char) (v << 4);
		else
			out->data[j / 2] |= (unsigned char) v;
		j++;
	}
	return true;
}
