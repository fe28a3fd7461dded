/*-------------------------------------------------------------------------
 *
 * limits.c
 *	  Per-tenant resource limits and statistics (to be built).
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/limits.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"

#include "tenant_isolation.h"

void
ti_limits_init(void)
{
}

Size
ti_limits_shmem_size(void)
{
	return 0;
}

void
ti_limits_shmem_startup(void)
{
}

void
ti_limits_on_context(const pg_uuid_t *tenant, bool local)
{
}

void
ti_limits_executor_start(QueryDesc *queryDesc)
{
}

void
ti_limits_executor_end(QueryDesc *queryDesc)
{
}
