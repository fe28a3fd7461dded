/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of the extension: one request, one startup, for every
 *	  module that keeps state across backends (audit ring, tenant limits and
 *	  statistics).
 *
 * PostgreSQL 15 requires shared memory and LWLock tranches to be requested
 * from shmem_request_hook; they are attached in shmem_startup_hook under
 * AddinShmemInitLock.  Each module exposes a size function and a startup
 * function; this file only sums and calls them, in a fixed order.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "tenant_isolation.h"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
ti_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(add_size(ti_audit_shmem_size(),
									ti_limits_shmem_size()));
	RequestNamedLWLockTranche("tenant_isolation", TI_LWLOCK_COUNT);
}

static void
ti_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ti_audit_shmem_startup();
	ti_limits_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

void
ti_install_shmem_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ti_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ti_shmem_startup;
}
