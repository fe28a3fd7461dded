/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  Who may touch a protected table without a tenant context.
 *
 * The contract: a superuser without a context is unrestricted; anybody else
 * without a context is refused (42501).  "Superuser" means the identity
 * that started the statement, the outer user, not the current user:
 *
 *	- SET ROLE changes the outer user; SECURITY DEFINER functions and
 *	  PostgreSQL's internal switches to a table owner (index builds,
 *	  CLUSTER, VACUUM FULL, referential checks, ANALYZE) change only the
 *	  current user; parallel workers inherit both from the leader.
 *	- So an ordinary role gains nothing by calling a superuser's SECURITY
 *	  DEFINER function or reading a superuser's view, and a superuser's
 *	  maintenance is not refused where PostgreSQL runs part of it as the
 *	  (ordinary) table owner.
 *
 * Provisioning that must act on a tenant's rows (drop_tenant, move_tenant,
 * export_tenant) enters that tenant's context itself (src/provision.c), so
 * it needs no exception here.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/identity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "tenant_isolation.h"

/*
 * ti_unscoped_allowed
 *		May the running statement touch protected tables without a context?
 */
bool
ti_unscoped_allowed(void)
{
	return superuser_arg(GetOuterUserId());
}
