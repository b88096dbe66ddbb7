// Drives sandboxd's sessions and files with the official SandboxClient (HTTP
// transport) and prints one JSON line of what it saw, for
// tests/integration/test_official_client.py.
//   node --import ./register.mjs sessions-files.mjs BASE_URL
import { SandboxClient, collectFile } from '@cloudflare/sandbox';

const baseUrl = process.argv[2];
const client = new SandboxClient({ baseUrl, defaultHeaders: { Authorization: 'Bearer none' } });
const out = {};
try {
  out.ping = await client.utils.ping();
  out.version = await client.utils.getVersion();
  // Sessions: cd and export persist in one, not in another.
  const created = await client.utils.createSession({ id: 'work', env: { GREETING: 'hi' }, cwd: '/tmp' });
  out.created = created.success;
  await client.commands.execute('mkdir -p /tmp/sub && cd /tmp/sub && export LEVEL=2', 'work');
  out.work = (await client.commands.execute('echo "$PWD $LEVEL $GREETING"', 'work')).stdout;
  out.other = (await client.commands.execute('echo "$PWD [$LEVEL] [$GREETING]"', 'default')).stdout;
  out.deleted = (await client.utils.deleteSession('work')).success;

  // Files, every method of the file client.
  const f = client.files;
  out.mkdir = (await f.mkdir('/workspace/dir/deep', 'default', { recursive: true })).success;
  await f.writeFile('/workspace/dir/hello.txt', 'héllo\n', 'default');
  await f.writeFile('/workspace/dir/bytes.bin', Buffer.from([0, 1, 2, 255]).toString('base64'), 'default',
    { encoding: 'base64' });
  const text = await f.readFile('/workspace/dir/hello.txt', 'default');
  out.text = { content: text.content, encoding: text.encoding, isBinary: text.isBinary, mimeType: text.mimeType, size: text.size };
  const bin = await f.readFile('/workspace/dir/bytes.bin', 'default');
  out.bin = { content: bin.content, encoding: bin.encoding, isBinary: bin.isBinary };
  const streamed = await collectFile(await f.readFileStream('/workspace/dir/hello.txt', 'default'));
  out.streamed = { content: streamed.content, mimeType: streamed.metadata.mimeType };
  const streamedBin = await collectFile(await f.readFileStream('/workspace/dir/bytes.bin', 'default'));
  out.streamedBin = Array.from(streamedBin.content);
  out.exists = [(await f.exists('/workspace/dir/hello.txt', 'default')).exists,
    (await f.exists('/workspace/nope', 'default')).exists];
  await f.renameFile('/workspace/dir/hello.txt', '/workspace/dir/renamed.txt', 'default');
  await f.moveFile('/workspace/dir/renamed.txt', '/workspace/moved.txt', 'default');
  const listed = await f.listFiles('/workspace', 'default', { recursive: true });
  out.listed = listed.files.map((e) => [e.relativePath, e.type]);
  out.listedFile = listed.files.find((e) => e.name === 'moved.txt');
  await f.deleteFile('/workspace/moved.txt', 'default');
  out.afterDelete = (await f.exists('/workspace/moved.txt', 'default')).exists;
  try {
    await f.readFile('/workspace/missing.txt', 'default');
    out.missing = 'no error';
  } catch (err) {
    out.missing = { name: err.name, code: err.code, status: err.httpStatus ?? err.status };
  }
} catch (err) {
  out.error = String(err && err.stack || err);
}
console.log(JSON.stringify(out));
