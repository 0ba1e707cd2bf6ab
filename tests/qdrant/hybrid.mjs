// tests/qdrant/hybrid.mjs -- the Query API's prefetch with query {"fusion": "rrf"} through
// the official Qdrant JS client, the way LangChain's hybrid retrieval calls it (a list of
// prefetches, each with its own query, filter and limit; the fused list cut by limit and
// offset). Each answer is checked against a reference computed here: every prefetch by
// brute force in double precision, then Reciprocal Rank Fusion (1 / (60 + rank), rank
// from 1, ties by smaller id). Then the refusals: dbsf, sparse queries, fusion without
// prefetch, prefetch with a nearest query, nested prefetch, a top-level filter.
// Run by the "qdrant" check suite (tests/check_qdrant.c):
//   node tests/qdrant/hybrid.mjs QDRANT_PORT NATIVE_PORT [API_KEY]
import { check, connect, counted, cos, failsWith } from './checks.mjs';

const { client } = connect('hybrid.mjs');

let seed = 4242;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 - 0.5; };
const DIM = 8, N = 300, COLL = 'hybrid_v1', LANGS = ['en', 'de', 'fr'];
const points = Array.from({ length: N }, (_, i) => ({
  id: i, vector: Array.from({ length: DIM }, rnd), payload: { lang: LANGS[i % 3], n: i },
}));

// one prefetch by brute force: the ids of the best limit points passing keep, best first
const exact = (q, limit, keep = () => true, skip = -1) => points.filter((p) => keep(p) && p.id !== skip)
  .map((p) => ({ id: p.id, s: cos(q, p.vector) })).sort((a, b) => b.s - a.s || a.id - b.id).slice(0, limit).map((h) => h.id);
const rrf = (lists, limit, offset = 0) => {
  const sum = new Map();
  for (const l of lists) l.forEach((id, r) => sum.set(id, (sum.get(id) ?? 0) + 1 / (60 + r + 1)));
  return [...sum].map(([id, s]) => ({ id, s })).sort((a, b) => b.s - a.s || a.id - b.id).slice(offset, offset + limit);
};
const same = (got, want, what) => {
  check(got.length === want.length, `${what}: ${got.length} points, expected ${want.length}`);
  got.forEach((p, i) => {
    check(p.id === want[i].id, `${what}: rank ${i}: id ${p.id}, expected ${want[i].id} (${JSON.stringify(got.map((x) => x.id))} vs ${JSON.stringify(want.map((x) => x.id))})`);
    check(Math.abs(p.score - want[i].s) <= 1e-6 * want[i].s, `${what}: rank ${i}: score ${p.score}, expected ${want[i].s}`);
  });
};

async function main() {
  if ((await client.collectionExists(COLL)).exists) await client.deleteCollection(COLL);
  await client.createCollection(COLL, { vectors: { size: DIM, distance: 'Cosine' } });
  await client.createPayloadIndex(COLL, { field_name: 'lang', field_schema: 'keyword', wait: true });
  await client.upsert(COLL, { wait: true, points });

  for (let t = 0; t < 10; t++) {
    const q1 = Array.from({ length: DIM }, rnd), q2 = Array.from({ length: DIM }, rnd);
    const lang = LANGS[t % 3], limit = 5 + t, offset = t % 4;
    // LangChain's hybrid call: two prefetches with the same filter, fused by RRF
    const filter = { must: [{ key: 'lang', match: { value: lang } }] };
    const r = await client.query(COLL, {
      prefetch: [
        { query: q1, using: '', filter, limit: 20, params: { exact: true } },
        { query: q2, filter, limit: 15, params: { exact: true } },
      ],
      query: { fusion: 'rrf' }, limit, offset, with_payload: true,
    });
    const keep = (p) => p.payload.lang === lang;
    same(r.points, rrf([exact(q1, 20, keep), exact(q2, 15, keep)], limit, offset), `rrf query ${t}`);
    check(r.points.every((p) => p.payload.lang === lang), `rrf query ${t}: payloads pass the filter`);
    // three prefetches, one by point id (that point is not among its hits), no filters
    const r3 = await client.query(COLL, {
      prefetch: [{ query: q1, limit: 30, params: { exact: true } }, { query: t, limit: 10, params: { exact: true } },
        { query: { nearest: q2 }, limit: 25, params: { exact: true } }],
      query: { fusion: 'rrf' }, limit: 12,
    });
    same(r3.points, rrf([exact(q1, 30), exact(points[t].vector, 10, undefined, t), exact(q2, 25)], 12), `rrf of three ${t}`);
  }
  // one prefetch as an object: RRF of one list keeps its order
  const q = points[7].vector;
  const one = await client.query(COLL, { prefetch: { query: q, limit: 8, params: { exact: true } }, query: { fusion: 'rrf' }, limit: 8 });
  same(one.points, rrf([exact(q, 8)], 8), 'one prefetch');
  // score_threshold applies to the fused scores
  const thr = await client.query(COLL, { prefetch: [{ query: q, limit: 8, params: { exact: true } }], query: { fusion: 'rrf' }, limit: 8, score_threshold: 1 / 63.5 });
  same(thr.points, rrf([exact(q, 8)], 3), 'score_threshold');
  // a prefetch's own score_threshold cuts its list before fusion
  const q2 = points[11].vector, above = (v) => (p) => cos(v, p.vector) >= 0.5;
  const cut = await client.query(COLL, { prefetch: [{ query: q, limit: 40, score_threshold: 0.5, params: { exact: true } },
    { query: q2, limit: 40, params: { exact: true } }], query: { fusion: 'rrf' }, limit: 30 });
  check(exact(q, 40, above(q)).length < 40, "the threshold cuts the prefetch");
  same(cut.points, rrf([exact(q, 40, above(q)), exact(q2, 40)], 30), 'prefetch score_threshold');
  // a batch mixing a fusion query and a plain one
  const batch = await client.queryBatch(COLL, { searches: [
    { prefetch: [{ query: q, limit: 8, params: { exact: true } }], query: { fusion: 'rrf' }, limit: 4 },
    { query: q, limit: 3, params: { exact: true } },
  ] });
  same(batch[0].points, rrf([exact(q, 8)], 4), 'batch: fusion');
  check(JSON.stringify(batch[1].points.map((p) => p.id)) === JSON.stringify(exact(q, 3)), 'batch: plain query');

  const pre = [{ query: q, limit: 5 }];
  await failsWith(client.query(COLL, { prefetch: pre, query: { fusion: 'dbsf' } }), 400, /dbsf.*not supported/, 'dbsf');
  await failsWith(client.query(COLL, { prefetch: pre, query: { fusion: 'xyz' } }), 400, /fusion must be 'rrf'/, 'unknown fusion');
  await failsWith(client.query(COLL, { query: { fusion: 'rrf' }, limit: 3 }), 400, /needs 'prefetch'/, 'fusion without prefetch');
  await failsWith(client.query(COLL, { prefetch: pre, query: q, limit: 3 }), 400, /only as .*fusion/, 'prefetch + nearest');
  await failsWith(client.query(COLL, { prefetch: [{ prefetch: pre, query: { fusion: 'rrf' } }], query: { fusion: 'rrf' } }), 400, /nested prefetch/, 'nested prefetch');
  await failsWith(client.query(COLL, { prefetch: pre, query: { fusion: 'rrf' }, filter: { must: [{ key: 'lang', match: { value: 'en' } }] } }), 400, /each prefetch/, 'top-level filter');
  await failsWith(client.query(COLL, { prefetch: [{ limit: 5 }], query: { fusion: 'rrf' } }), 400, /prefetch\[0\] needs a query/, 'prefetch without query');
  await failsWith(client.query(COLL, { prefetch: [{ query: { indices: [1, 5], values: [0.5, 0.2] }, using: '', limit: 5 }], query: { fusion: 'rrf' } }), 400, /has no sparse vectors/, 'sparse query on a dense collection');
  await failsWith(client.query(COLL, { prefetch: [{ query: [1, 2], limit: 5 }], query: { fusion: 'rrf' } }), 400, null, 'prefetch of a wrong dimension');
  await client.deleteCollection(COLL);
  console.log(`qdrant hybrid: ${counted.checks} checks passed`);
}

main().catch((e) => {
  console.error('qdrant hybrid test FAILED:', e?.message ?? e, e?.data ? JSON.stringify(e.data) : '');
  if (e?.stack) console.error(e.stack);
  process.exit(1);
});
