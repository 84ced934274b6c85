// Package roles compiles a scope to PostgreSQL roles: layer 5 of airlock's
// defense. Each scope gets a NOLOGIN read role and, when it has a write
// section, a NOLOGIN write role, holding exactly the scope's privileges, and
// row-level-security policies for its row filters. airlock runs every
// transaction under SET LOCAL ROLE to one of them, so that if the SQL guard
// ever misses a case, PostgreSQL's own privilege checks still stop the agent.
//
// Plan compares the scope with the catalog and returns the statements that
// make the database match it; Apply runs them. Running either twice in a
// row yields nothing the second time, and after a scope edit they converge:
// columns and tables that left the scope lose their grants, and removed row
// filters lose their policies.
//
// # What the read role gets
//
// The read role is NOLOGIN, NOINHERIT, NOSUPERUSER, NOCREATEDB,
// NOCREATEROLE, NOREPLICATION, NOBYPASSRLS and a member of no role. It has
// USAGE on the schemas of the scope's read tables and column-level SELECT on
// each read table's allowed columns: the columns listed in "columns", or
// every column when the rule lists none. Column-level grants (rather than a
// table-level SELECT) mean a column added later is not readable until the
// scope is applied again: the database fails closed.
//
// A read table with masked columns is the exception: the read role gets no
// grant on it, only SELECT on its security-barrier view in the scope's
// mask schema (and USAGE there), which returns every masked column as a
// keyed hash. The view is owned by the scope's NOLOGIN mask role, the only
// role that may read the masked columns raw and the key
// (docs/architecture.md, Masking).
//
// # What the write role gets
//
// The write role has the same attributes, USAGE on the schemas of the read
// and write tables, column-level SELECT on the read tables' allowed columns
// (for INSERT ... SELECT), and on each write table that exists: INSERT for
// "insert", UPDATE and SELECT for "update", DELETE and SELECT for "delete",
// TRUNCATE for "truncate" (SELECT is column-level, and limited to the
// allowed columns when the write table is also a restricted read table),
// plus USAGE on the sequences the write tables own (serial and identity
// columns).
//
// DDL kinds (create_table, add_column, create_index, ...) are not compiled
// to grants: PostgreSQL ties DDL to ownership, and making the write role a
// member of the tables' owner would hand it far more than the scope. With
// write.own_tables the write role owns the write tables instead (Apply
// reassigns them to it) and nothing else; without it the write role can
// run DML and nothing else, and DDL stays enforced by the SQL guard and
// the human commit only. A write table that does not exist yet (one a
// migration will create) gets no grants until the scope is applied again.
//
// # What is revoked, and what is not
//
// Anything either role holds on any relation, column or schema of the
// database beyond the above is revoked: other privileges on the same tables
// (REFERENCES, TRIGGER, table-level SELECT, ...), other tables, other
// schemas, CREATE on schemas. Roles the scope's roles are members of are
// revoked.
//
// Not touched: grants to PUBLIC (revoking them would change what every
// other role sees; a table readable by PUBLIC is readable by the scope's
// roles too, so keep sensitive tables out of PUBLIC), EXECUTE on functions
// (PUBLIC has it on pg_catalog functions by default, and revoking it
// cluster-wide breaks ordinary clients; the guard's function rule covers
// those, and the dangerous file functions such as pg_read_file are
// superuser or pg_read_server_files only anyway), default privileges, types,
// languages, large objects, and database-level CONNECT and TEMPORARY.
// Memberships granted through Options.GrantTo are only ever added; revoke
// one by hand (REVOKE role FROM login). A role that owns relations is
// refused unless the scope lets it own them (write.own_tables), since an
// owner has every privilege on what it owns. When the
// scope loses its write section the write role keeps existing but loses
// every privilege and policy.
//
// # Row filters
//
// A table rule's row_filter is parsed as the WHERE clause of
// SELECT 1 FROM that table and must pass the read guard with only that
// table in scope (so no other table, no subquery, no denied function) and
// with volatile functions refused; then it becomes a RESTRICTIVE policy
// airlock_<scope>_filter FOR SELECT TO the read role (and
// airlock_<scope>_write_filter FOR ALL TO the write role, which also checks
// written rows). Restrictive policies are AND-ed with the permissive ones,
// so the scope's roles see only matching rows while other roles are
// unaffected: when a table does not have row-level security yet, Apply
// enables it and adds a PERMISSIVE policy airlock_passthrough FOR ALL TO
// PUBLIC USING (true) WITH CHECK (true), which leaves every other role's
// view unchanged. When row-level security is already enabled (someone
// else's policies), no passthrough policy is added: the scope's roles then
// see the rows the existing permissive policies give them AND the filter.
// When the last airlock filter leaves a table that has airlock_passthrough
// and no other policy, the passthrough goes and row-level security is
// disabled again. The table owner, superusers and BYPASSRLS roles bypass
// every policy, as always in PostgreSQL. The policy's expression is
// deparsed from the validated parse tree, never pasted from the file; its
// source text is kept as the policy's comment, which is how Plan notices a
// changed filter.
//
// # Logins, and what else Apply sets up
//
// Options names the logins that hold each principal's rights
// (docs/architecture.md, Principals): agent logins become members of the
// read role only, service logins of the read and write roles, reviewer
// logins of the write role, each also of its principal group
// (airlock_agents, airlock_services, airlock_reviewers). A scope that
// allows DO blocks gets its runner function, one with undo on gets the
// capture triggers on its write tables, and Options.Harden revokes from
// PUBLIC what any login could otherwise do past the scope (Exposures
// lists it; doctor reports it).
//
// # Contract
//
// Plan only reads the catalog (through package catalog and its own
// queries) and returns statements; Apply makes airlock's own schema
// (review.EnsureSchema), then runs Plan's statements in one transaction
// under an advisory lock, so two applies never interleave. Both are
// idempotent. Every name in a statement is quoted as an identifier.
// Problems and Exposures report, and change nothing.
package roles
