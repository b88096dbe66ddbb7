// Drives sandboxd's code interpreter with the official SandboxClient (HTTP
// transport): its InterpreterClient (client.interpreter) creates, lists and
// deletes code contexts and runs cells with runCodeStream() and its
// callbacks.  Prints one JSON line of what it saw, for
// tests/integration/test_official_client.py.
//   node --import ./register.mjs interpreter.mjs BASE_URL
import { SandboxClient } from '@cloudflare/sandbox';

const baseUrl = process.argv[2];
const client = new SandboxClient({ baseUrl, defaultHeaders: { Authorization: 'Bearer none' } });
const it = client.interpreter;
const out = {};

// One cell through runCodeStream(): everything each callback was given, in
// the order the callbacks were called.
async function cell(contextId, code, language, timeoutMs) {
  const seen = { calls: [], stdout: '', stderr: '', results: [], errors: [] };
  await it.runCodeStream(contextId, code, language, {
    onStdout: (o) => { seen.calls.push('stdout'); seen.stdout += o.text; },
    onStderr: (o) => { seen.calls.push('stderr'); seen.stderr += o.text; },
    onResult: (r) => {
      seen.calls.push('result');
      seen.results.push({
        text: r.text ?? null,
        html: r.html ?? null,
        png: r.png ?? null,
        json: r.json ?? null,
        formats: r.formats(),
      });
    },
    onError: (e) => {
      seen.calls.push('error');
      seen.errors.push({ name: e.name, message: e.message, traceback: e.traceback });
    },
  }, timeoutMs);
  return seen;
}

try {
  const py = await it.createCodeContext({ language: 'python', envVars: { SDK_VAR: 'from-sdk' } });
  const js = await it.createCodeContext({ language: 'javascript', cwd: '/tmp' });
  out.created = [py, js].map((c) => ({
    id: c.id, language: c.language, cwd: c.cwd, createdAt: c.createdAt instanceof Date && !isNaN(c.createdAt),
  }));

  out.pyState = await cell(py.id, "import os\nx = 20\nprint('hi', os.environ['SDK_VAR'])", 'python');
  out.pyValue = await cell(py.id, 'x * 2 + 2', 'python');
  out.pyError = await cell(py.id, 'a = 1\nraise ValueError("bad value")', 'python');
  out.pyTimeout = await cell(py.id, 'while True:\n    pass', 'python', 300);
  out.pyAfterTimeout = await cell(py.id, 'x', 'python');
  out.pyPng = await cell(py.id, [
    'import matplotlib.pyplot as plt',
    'plt.figure(figsize=(2, 2))',
    'plt.bar([1, 2], [3, 4])',
    'plt.show()',
  ].join('\n'), 'python');
  out.pyJson = await cell(py.id, "{'a': [1, 2]}", 'python');

  out.js1 = await cell(js.id, "let n = 1; console.log('cwd', process.cwd()); n", 'javascript');
  out.js2 = await cell(js.id, 'let n = 41; await Promise.resolve(n + 1)', 'javascript');
  out.jsError = await cell(js.id, "\nthrow new RangeError('out of range')", 'javascript');

  out.listed = (await it.listCodeContexts()).map((c) => ({ id: c.id, language: c.language, cwd: c.cwd }));
  await it.deleteCodeContext(js.id);
  out.listedAfterDelete = (await it.listCodeContexts()).map((c) => c.id);
  try {
    await it.deleteCodeContext(js.id);
    out.deleteAgain = 'no error';
  } catch (err) {
    out.deleteAgain = { name: err.name, code: err.code ?? null, status: err.httpStatus ?? err.status ?? null, message: String(err.message) };
  }
  try {
    await cell(js.id, '1', 'javascript');
    out.cellOnDeleted = 'no error';
  } catch (err) {
    out.cellOnDeleted = { name: err.name, code: err.code ?? null, message: String(err.message) };
  }
  await it.deleteCodeContext(py.id);
  out.listedAtEnd = (await it.listCodeContexts()).length;
} catch (err) {
  out.error = String(err && err.stack || err);
}
console.log(JSON.stringify(out));
