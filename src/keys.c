/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Per-tenant encryption keys (to be built).
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/keys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "tenant_isolation.h"

void
ti_keys_init(void)
{
}

void
ti_keys_on_context_change(void)
{
}
