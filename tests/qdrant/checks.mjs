// tests/qdrant/checks.mjs -- what the node tests of tests/qdrant share: a counted assertion,
// an expected-error assertion (status and message of a rejected client call), and cosine
// similarity in double precision for brute-force references.
import assert from 'node:assert/strict';

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
