// tests/qdrant/checks.mjs -- what the node tests of tests/qdrant share: the command line and
// the two clients (the official one on the Qdrant port, fetch on the native port), a counted
// assertion, an expected-error assertion (status and message of a rejected client call), and
// cosine similarity in double precision for brute-force references.
import assert from 'node:assert/strict';
import { QdrantClient } from '@qdrant/js-client-rest';

// node SCRIPT QDRANT_PORT NATIVE_PORT [API_KEY]: exits 2 on a bad command line.
export const connect = (script) => {
  const [qport, nport, apiKey] = process.argv.slice(2);
  if (!qport || !nport) { console.error(`usage: ${script} QDRANT_PORT NATIVE_PORT [API_KEY]`); process.exit(2); }
  const client = new QdrantClient({ url: `http://127.0.0.1:${qport}`, apiKey, checkCompatibility: false });
  const native = async (method, path, body) => {
    const headers = { 'Content-Type': 'application/json' };
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    const r = await fetch(`http://127.0.0.1:${nport}${path}`, { method, headers, body: body && JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  return { qport, nport, apiKey, client, native };
};

export const cos = (a, b) => {
  let d = 0, x = 0, y = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i]; }
  return d / Math.sqrt(x * y);
};

export const counted = { checks: 0 };
export const check = (cond, msg) => { counted.checks++; assert.ok(cond, msg); };
export const failsWith = async (p, status, re, what) => {
  const e = await p.then(() => null, (x) => x);
  const text = JSON.stringify(e?.data ?? e?.message ?? '');
  check(e && e.status === status, `${what}: status ${e?.status}, expected ${status}: ${text}`);
  if (re) check(re.test(text), `${what}: message ${text} should match ${re}`);
};
