// Drives a built airlock binary over stdio with the official TypeScript MCP
// SDK client, whose callTool validates structuredContent against each
// tool's outputSchema (Ajv) and rejects a non-error result without it.
// e2e/tsclient_test.go runs this and asserts on the JSON it prints.
//
// usage: node client.mjs AIRLOCK_BINARY SCOPE_FILE [ROWS]
// ROWS ("structured" or "both") is sent as the experimental client
// capability airlock/results; without it the session takes its query rows
// as text (docs/architecture.md, Results).
// The database URL comes only from the environment (AIRLOCK_DATABASE_URL),
// as in a real MCP client config.
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

const [binary, scope, rows] = process.argv.slice(2);
if (!binary || !scope || !process.env.AIRLOCK_DATABASE_URL) {
  console.error('usage: AIRLOCK_DATABASE_URL=... node client.mjs AIRLOCK_BINARY SCOPE_FILE');
  process.exit(2);
}

const CALL_TIMEOUT_MS = 20_000;
const report = {
  sdk_version: JSON.parse(readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url))).version,
  steps: {},
};

// Never hang: whatever is still running after this, the report so far is
// printed and the process exits non-zero (the Go test also has a deadline).
const watchdog = setTimeout(() => {
  report.watchdog = 'timed out';
  console.log(JSON.stringify(report));
  process.exit(3);
}, 120_000);

function thrown(err) {
  return { name: err?.name, message: String(err?.message ?? err), code: err instanceof McpError ? err.code : undefined };
}

// call runs one tools/call through client.callTool, so the SDK's own
// output-schema checks apply, and records the result or the exception.
async function call(step, name, args) {
  try {
    const res = await client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS });
    report.steps[step] = {
      isError: res.isError === true,
      text: (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join(''),
      structuredContent: res.structuredContent,
      _meta: res._meta,
    };
  } catch (err) {
    report.steps[step] = { exception: thrown(err) };
  }
  return report.steps[step];
}

const transport = new StdioClientTransport({
  command: binary,
  args: ['serve', '--scope', scope, '--allow-owner', '--local-writes'],
  // Only the SDK's default variables (PATH, HOME, ...) are inherited; the
  // URL is passed on explicitly, as an MCP config's "env" would.
  env: { AIRLOCK_DATABASE_URL: process.env.AIRLOCK_DATABASE_URL },
  stderr: 'inherit',
});
const client = new Client({ name: 'airlock-e2e-tsclient', version: '1' },
  rows ? { capabilities: { experimental: { 'airlock/results': { rows } } } } : undefined);

try {
  await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
  // listTools also makes the client cache each tool's output validator.
  const { tools } = await client.listTools(undefined, { timeout: CALL_TIMEOUT_MS });
  report.tools = tools.map((t) => ({ name: t.name, has_output_schema: t.outputSchema !== undefined }));

  // One success per tool.
  await call('query_readonly', 'query_readonly', { sql: 'SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status' });
  await call('list_tables', 'list_tables', {});
  await call('describe_table', 'describe_table', { table: 'orders' });
  await call('migrate_dry_run', 'migrate_dry_run', { sql: "UPDATE orders SET status = 'cancelled' WHERE id BETWEEN 1 AND 3" });
  const applied = await call('apply_migration_with_ticket', 'apply_migration_with_ticket', {
    ticket: 'OPS-42', summary: 'tsclient e2e: refund two orders', sql: "UPDATE orders SET status = 'refunded' WHERE id IN (5, 6)",
  });
  await call('get_change_status', 'get_change_status', { change_id: applied.structuredContent?.change_id ?? 'missing-change-id' });

  // One refusal per tool.
  await call('refuse_query_readonly', 'query_readonly', { sql: 'DELETE FROM orders' });
  await call('refuse_list_tables', 'list_tables', { schema: 'public' });
  await call('refuse_describe_table', 'describe_table', { table: 'secrets' });
  await call('refuse_migrate_dry_run', 'migrate_dry_run', { sql: 'DELETE FROM customers' });
  await call('refuse_apply_migration_with_ticket', 'apply_migration_with_ticket', {
    ticket: 'not a ticket', summary: 'tsclient e2e: bad ticket', sql: "UPDATE orders SET status = 'refunded' WHERE id = 7",
  });
  await call('refuse_get_change_status', 'get_change_status', { change_id: 'not-a-uuid' });

  // A protocol-level error: a tool that does not exist.
  await call('unknown_tool', 'execute_sql', { sql: 'DROP TABLE orders' });
} catch (err) {
  report.fatal = thrown(err);
} finally {
  await client.close().catch((err) => { report.close_error = thrown(err); });
  clearTimeout(watchdog);
}
console.log(JSON.stringify(report, null, 2));
