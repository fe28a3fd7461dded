--
-- writes: in tenant A's context, writes land in A, never touch B, and any
-- attempt to write a row of B fails with 42501 without showing B's values.
--
\set SHOW_CONTEXT never
GRANT INSERT ON events_b TO regress_app;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress writes');
SET ROLE regress_app;

-- INSERT without the tenant column gets the context's tenant
INSERT INTO docs (id, title, body) VALUES (5, 'a-new', 'alpha five') RETURNING tenant_id, id, body;
-- another tenant's id, or NULL, is refused
INSERT INTO docs VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 6, 'x', 'planted');
SELECT sqlstate_of($$INSERT INTO docs VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 6, 'x', 'planted')$$);
SELECT sqlstate_of($$INSERT INTO docs VALUES (NULL, 7, 'x', 'null tenant')$$);
SELECT sqlstate_of($$INSERT INTO docs SELECT 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 8, 'x', 'planted'$$);
SELECT sqlstate_of($$INSERT INTO events VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 3, 1)$$);
SELECT sqlstate_of($$INSERT INTO events_b VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 3, 1)$$);

-- UPDATE and DELETE see only A's rows; a row cannot move to B
UPDATE docs SET body = body || ' (edited)' WHERE id IN (1, 3) RETURNING tenant_id, id, body;
UPDATE docs SET body = 'overwritten' WHERE id = 3;
DELETE FROM docs WHERE id = 3;
DELETE FROM docs WHERE body LIKE 'B-SECRET%';
UPDATE docs SET tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' WHERE id = 5;
SELECT sqlstate_of($$UPDATE docs SET tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' WHERE id = 5$$);
SELECT sqlstate_of($$UPDATE events SET tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' WHERE id = 1$$);
UPDATE events SET amount = amount + 1 RETURNING id, amount;

-- INSERT ... ON CONFLICT through a unique key without the tenant column:
-- colliding with B's row must not update it.
INSERT INTO notes (slug, body) VALUES ('b-welcome', 'hijack')
	ON CONFLICT (slug) DO UPDATE SET body = EXCLUDED.body;
SELECT sqlstate_of($$INSERT INTO notes (slug, body) VALUES ('b-welcome', 'hijack')
	ON CONFLICT (slug) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, body = EXCLUDED.body$$);
-- DO NOTHING reveals existence only (documented side channel of tenant-less keys)
INSERT INTO notes (slug, body) VALUES ('b-welcome', 'quiet') ON CONFLICT DO NOTHING;
INSERT INTO notes (slug, body) VALUES ('a-welcome', 'alpha updated')
	ON CONFLICT (slug) DO UPDATE SET body = EXCLUDED.body RETURNING slug, body;
SELECT slug, body FROM notes ORDER BY slug;

-- MERGE: B's row 3 is "not matched"; the insert lands in A
MERGE INTO docs d
USING (VALUES (1, 'merged one'), (3, 'merged three')) v(id, body) ON d.id = v.id
WHEN MATCHED THEN UPDATE SET body = v.body
WHEN NOT MATCHED THEN INSERT (id, title, body) VALUES (v.id, 'a-merged', v.body);
SELECT sqlstate_of($$MERGE INTO docs d USING (VALUES (9)) v(id) ON d.id = v.id
	WHEN NOT MATCHED THEN INSERT VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', v.id, 'x', 'planted')$$);
SELECT id, title, body FROM docs ORDER BY id;

-- Referential checks are scoped: B's customer 2 does not exist for A.
INSERT INTO orders (id, customer_id) VALUES (11, 2);
INSERT INTO orders (id, customer_id) VALUES (12, 1);
SELECT tenant_id, id, customer_id FROM orders ORDER BY id;
-- ... also when the FK column is updated (to B's customer 2), and on the
-- referenced side: A's customer 1 is referenced by A's orders, so neither
-- its delete nor a change of its key goes through
UPDATE orders SET customer_id = 2 WHERE id = 12;
SELECT sqlstate_of($$UPDATE orders SET customer_id = 2 WHERE id = 12$$);
SELECT sqlstate_of($$DELETE FROM customers WHERE id = 1$$);
SELECT sqlstate_of($$UPDATE customers SET id = 5 WHERE id = 1$$);
-- B's customer 2 (referenced by B's order 20) is not A's to delete or change
DELETE FROM customers WHERE id = 2;
UPDATE customers SET name = 'taken' WHERE id = 2;
SELECT tenant_id, id, customer_id FROM orders ORDER BY id;
RESET ROLE;
SELECT tenant_isolation.logout();
SELECT tenant_id, id, name FROM customers ORDER BY id;
SELECT tenant_id, id, customer_id FROM orders ORDER BY id;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress writes');
SET ROLE regress_app;

-- COPY FROM: A's rows go in; a row of B or with a NULL tenant fails the
-- whole COPY
COPY docs (id, title, body) FROM STDIN;
20	a-copy	alpha copied
21	a-copy	alpha copied too
\.
COPY docs FROM STDIN;
aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa	22	a-copy	fine	\N
bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb	23	b-copy	planted	\N
\.
COPY docs FROM STDIN;
\N	24	x	null tenant	\N
\.
SELECT id, body FROM docs WHERE id >= 20 ORDER BY id;

-- TRUNCATE is refused in a tenant context
TRUNCATE docs;
SELECT sqlstate_of($$TRUNCATE events_b$$);
RESET ROLE;
SELECT sqlstate_of($$TRUNCATE docs$$);
SELECT tenant_isolation.logout();

-- without a context, an ordinary role writes nothing
SET ROLE regress_app;
SELECT sqlstate_of($$INSERT INTO docs (id, body) VALUES (99, 'x')$$);
SELECT sqlstate_of($$TRUNCATE docs$$);
COPY docs (id, body) FROM STDIN;
99	nope
\.
RESET ROLE;

-- a superuser without a context may write, but never a NULL tenant
SELECT sqlstate_of($$INSERT INTO docs (id, body) VALUES (100, 'x')$$);

-- B is exactly as init left it
SELECT tenant_id, id, title, body FROM docs
 WHERE tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' ORDER BY id;
SELECT tenant_id, slug, body FROM notes ORDER BY slug;
SELECT tenant_id, id, amount FROM events ORDER BY tenant_id, id;
