/*-------------------------------------------------------------------------
 *
 * fuzz_uuid.c
 *	  libFuzzer target for the tenant id parser ti_uuid_from_cstring().
 *
 * ti_uuid_from_cstring() (src/tenant_isolation.c) parses every tenant id
 * that reaches the server as text: SET tenant_isolation.tenant_id (its GUC
 * check hook), the schema-tier role names mapped back to tenants, and the
 * claims prefix of the context.  The harness compiles the real function by
 * including src/tenant_isolation.c with the backend headers; the few backend
 * symbols that file references are stubbed below and abort() if reached.
 *
 * It links src/jwt_parse.c (built separately with -DFRONTEND, as for
 * fuzz_jwt) and checks, for every input, that the two uuid parsers of the
 * tree agree (ti_uuid_parse_strict reads the tenant claim of a token):
 * same verdict, same 16 bytes.  For an accepted input it also checks that
 * the bytes printed in canonical form give back the input, lower-cased.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_uuid.c
 *
 *-------------------------------------------------------------------------
 */
#include "../../src/tenant_isolation.c"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>

/* ---------- stubs: what tenant_isolation.c references, never reached ---------- */

bool		process_shared_preload_libraries_in_progress = false;

#define TI_NEVER(f) void f(void); void f(void) { abort(); }
TI_NEVER(ti_define_context_gucs)
TI_NEVER(ti_jwt_init)
TI_NEVER(ti_audit_init)
TI_NEVER(ti_limits_init)
TI_NEVER(ti_keys_init)
TI_NEVER(ti_install_shmem_hooks)
TI_NEVER(ti_catalog_init)
TI_NEVER(ti_install_planner_hooks)
TI_NEVER(ti_install_executor_hooks)
TI_NEVER(ti_install_utility_hook)
TI_NEVER(ti_install_largeobject_hooks)

void
MarkGUCPrefixReserved(const char *className)
{
	abort();
}

bool
errstart(int elevel, const char *domain)
{
	abort();
}

bool
errstart_cold(int elevel, const char *domain)
{
	abort();
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	abort();
}

int
errcode(int sqlerrcode)
{
	abort();
}

int
errmsg(const char *fmt,...)
{
	abort();
}

int
errhint(const char *fmt,...)
{
	abort();
}

Datum
DirectFunctionCall1Coll(PGFunction func, Oid collation, Datum arg1)
{
	abort();
}

Datum
uuid_out(PG_FUNCTION_ARGS)
{
	abort();
}

/* src/jwt_parse.c, compiled with -DFRONTEND */
extern bool ti_uuid_parse_strict(const char *s, unsigned char out[16]);

/* ---------- the target ---------- */

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *s;
	pg_uuid_t	u;
	unsigned char u2[16];
	bool		ok1;
	bool		ok2;

	if (size > 4096)
		return 0;
	/* a C string, as GUC values and names are: stop at the first NUL */
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';

	memset(&u, 0x5a, sizeof(u));
	ok1 = ti_uuid_from_cstring(s, &u);
	ok2 = ti_uuid_parse_strict(s, u2);
	if (ok1 != ok2)
		abort();				/* the two parsers of the tree disagree */
	if (ok1)
	{
		static const char hex[] = "0123456789abcdef";
		char		again[37];
		int			i,
					o = 0;

		if (memcmp(u.data, u2, 16) != 0)
			abort();
		for (i = 0; i < 16; i++)
		{
			if (i == 4 || i == 6 || i == 8 || i == 10)
				again[o++] = '-';
			again[o++] = hex[u.data[i] >> 4];
			again[o++] = hex[u.data[i] & 15];
		}
		again[o] = '\0';
		if (strlen(s) != 36)
			abort();
		for (i = 0; i < 36; i++)
			if (tolower((unsigned char) s[i]) != again[i])
				abort();
	}
	/* NULL is refused, never dereferenced */
	if (ti_uuid_from_cstring(NULL, &u))
		abort();
	free(s);
	return 0;
}
