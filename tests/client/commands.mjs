// Drives sandboxd with the official SandboxClient (HTTP transport) and prints
// one JSON line of what it saw, for tests/integration/test_official_client.py.
//   node --import ./register.mjs commands.mjs BASE_URL
import { SandboxClient, parseSSEStream } from '@cloudflare/sandbox';

const baseUrl = process.argv[2];
const client = new SandboxClient({ baseUrl, defaultHeaders: { Authorization: 'Bearer none' } });
const out = {};
try {
  const r = await client.commands.execute('echo hello; echo oops >&2; exit 3', 'default');
  out.execute = { success: r.success, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  const w = await client.commands.execute('printf from-cwd; pwd', 'default', { cwd: '/tmp', env: { A: 'b' } });
  out.cwd = w.stdout;
  const stream = await client.commands.executeStream('echo one; echo two >&2; exit 4', 'default');
  out.events = [];
  for await (const ev of parseSSEStream(stream)) out.events.push(ev);
} catch (err) {
  out.error = String(err && err.stack || err);
}
console.log(JSON.stringify(out));
