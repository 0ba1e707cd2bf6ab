// tests/qdrant/sparse.mjs -- sparse vectors through the official Qdrant JS client, replaying
// the requests langchain-qdrant's QdrantVectorStore sends (langchain_qdrant/qdrant.py):
//   HYBRID mode: create with vectors {"": {size, distance: Cosine}} and sparse_vectors
//     {"langchain-sparse": {index: {on_disk: false}}}; get_collection to validate that shape;
//     upsert of points {id: uuid4().hex, vector: {"": dense, "langchain-sparse": {indices,
//     values}}, payload: {page_content, metadata}}; similarity_search as query_points with
//     two prefetches (using "" + dense, using "langchain-sparse" + sparse, each with the
//     filter and limit k) fused by {fusion: "rrf"}, limit k, offset, with_payload true,
//     with_vector false (and None fields sent as null);
//   SPARSE mode: create with vectors {} and the sparse vector, points with only it, and
//     query_points {query: {indices, values}, using: "langchain-sparse", filter, limit};
//   DENSE mode over the hybrid collection: {query: dense, using: ""}.
// Python's langchain-qdrant itself cannot run here (no PyPI), so the calls are replayed by
// hand, in the shapes its source sends. Sparse vectors are made as FastEmbed's BM25 makes
// them: indices are 31-bit hashes of words, in text order (unsorted), values real weights.
// Every answer is checked against a reference computed here in double precision: cosine
// and sparse dot products by brute force, then RRF (1 / (60 + rank), rank from 1); the ids
// of equal fused scores may come in any order (quiverd breaks ties by its id hash of the
// UUID). Then updates, deletes, retrieve with vectors, and the refusals of bad input.
// Run by the "qdrant" check suite (tests/check_qdrant.c):
//   node tests/qdrant/sparse.mjs QDRANT_PORT NATIVE_PORT [API_KEY]
import { check, connect, counted, cos, failsWith } from './checks.mjs';

const { client, qport, apiKey } = connect('sparse.mjs');

let seed = 2222;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296; };
const DIM = 16, N = 240, K = 8, HYB = 'lc_hybrid', SPA = 'lc_sparse', SPARSE = 'langchain-sparse';
const WORDS = Array.from({ length: 50 }, (_, i) => `w${i}`);
const LANGS = ['en', 'de', 'fr'];
const hash = (w) => { let h = 2166136261; for (const c of w) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0; return h & 0x7fffffff; };
const hex = () => Array.from({ length: 32 }, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('');
const canon = (h) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;

// a document's sparse vector: each distinct word once, in text order, weight tf * (0.5..1.5)
const sparseOf = (text) => {
  const tf = new Map();
  for (const w of text.split(' ')) tf.set(w, (tf.get(w) ?? 0) + 1);
  const indices = [], values = [];
  for (const [w, n] of tf) { indices.push(hash(w)); values.push(n * (0.5 + rnd())); }
  return { indices, values };
};
const makeDoc = (id) => {
  const len = 3 + Math.floor(rnd() * 12);
  const text = Array.from({ length: len }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ');
  return { id, text, dense: Array.from({ length: DIM }, () => rnd() - 0.5), sparse: sparseOf(text), lang: LANGS[Math.floor(rnd() * 3)] };
};
let docs = Array.from({ length: N }, () => makeDoc(hex()));
const point = (d, withDense = true) => ({
  id: d.id,
  vector: withDense ? { '': d.dense, [SPARSE]: d.sparse } : { [SPARSE]: d.sparse },
  payload: { page_content: d.text, metadata: { lang: d.lang } },
});
const upsert = async (coll, list, withDense) => {
  for (let i = 0; i < list.length; i += 64)     // LangChain's batch_size
    await client.upsert(coll, { wait: true, points: list.slice(i, i + 64).map((d) => point(d, withDense)) });
};

const dot = (q, s) => {
  const m = new Map(s.indices.map((ix, i) => [ix, s.values[i]]));
  let v = 0, shared = false;
  q.indices.forEach((ix, i) => { if (m.has(ix)) { v += q.values[i] * m.get(ix); shared = true; } });
  return shared ? v : null;
};
const denseRef = (q, k, keep) => docs.filter(keep).map((d) => ({ id: canon(d.id), s: cos(q, d.dense) }))
  .sort((a, b) => b.s - a.s).slice(0, k);
const sparseRef = (q, k, keep) => docs.filter(keep).map((d) => ({ id: canon(d.id), s: dot(q, d.sparse) }))
  .filter((h) => h.s !== null).sort((a, b) => b.s - a.s).slice(0, k);
// every fused point, best first (same() takes the slice, and ties across its ends)
const rrf = (lists) => {
  const sum = new Map();
  for (const l of lists) l.forEach((h, r) => sum.set(h.id, (sum.get(h.id) ?? 0) + 1 / (60 + r + 1)));
  return [...sum].map(([id, s]) => ({ id, s })).sort((a, b) => b.s - a.s);
};
// got matches all[offset, offset + limit) rank by rank in score; the id at each rank is one
// of all's ids of that score (ties may come in any order), and no id twice
const same = (got, all, what, tol = 1e-6, offset = 0, limit = all.length) => {
  const want = all.slice(offset, offset + limit);
  check(got.length === want.length, `${what}: ${got.length} points, expected ${want.length}: ${JSON.stringify(got.map((p) => [p.id, p.score]))} vs ${JSON.stringify(want)}`);
  got.forEach((p, i) => {
    check(Math.abs(p.score - want[i].s) <= tol * Math.max(1, Math.abs(want[i].s)), `${what}: rank ${i}: score ${p.score}, expected ${want[i].s}`);
    const ok = all.some((w) => w.id === p.id && Math.abs(w.s - p.score) <= tol * Math.max(1, Math.abs(w.s)));
    check(ok, `${what}: rank ${i}: id ${p.id} (score ${p.score}) is not among the expected ones of that score`);
  });
  check(new Set(got.map((p) => p.id)).size === got.length, `${what}: an id twice`);
};
const queryText = () => Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ');
const querySparse = (t) => {              // FastEmbed's query embedding: each word once, weight 1
  const ws = [...new Set(t.split(' '))];
  return { indices: ws.map(hash), values: ws.map(() => 1) };
};

async function checkHybrid(round) {
  for (let t = 0; t < 12; t++) {
    const dq = Array.from({ length: DIM }, () => rnd() - 0.5), sq = querySparse(queryText());
    const lang = LANGS[t % 3], filtered = t % 2 === 1, offset = t % 3;
    const filter = filtered ? { must: [{ key: 'metadata.lang', match: { value: lang } }] } : null;
    const keep = (d) => !filtered || d.lang === lang;
    const r = await client.query(HYB, {
      prefetch: [{ using: '', query: dq, filter, limit: K + offset, params: null },
        { using: SPARSE, query: sq, filter, limit: K + offset, params: null }],
      query: { fusion: 'rrf' }, limit: K, offset, with_payload: true, with_vector: false, score_threshold: null,
    });
    same(r.points, rrf([denseRef(dq, K + offset, keep), sparseRef(sq, K + offset, keep)]), `${round}: hybrid ${t}`, 1e-6, offset, K);
    check(r.points.every((p) => p.payload.page_content && (!filtered || p.payload.metadata.lang === lang) && p.vector === null),
      `${round}: hybrid ${t}: payloads as LangChain reads them`);
    // RetrievalMode.DENSE over the same collection
    const d = await client.query(HYB, { query: dq, using: '', filter, limit: K, offset: 0, with_payload: true, with_vector: false });
    same(d.points, denseRef(dq, N, keep), `${round}: dense ${t}`, 1e-5, 0, K);
    // a sparse query on the hybrid collection, with offset
    const s = await client.query(HYB, { query: sq, using: SPARSE, filter, limit: K, offset, with_payload: true, with_vector: false });
    same(s.points, sparseRef(sq, N, keep), `${round}: sparse ${t}`, 1e-5, offset, K);
  }
}

async function checkSparseOnly(round) {
  for (let t = 0; t < 12; t++) {
    const sq = querySparse(queryText()), lang = LANGS[t % 3], filtered = t % 2 === 0;
    const filter = filtered ? { must: [{ key: 'metadata.lang', match: { value: lang } }] } : undefined;
    const keep = (d) => !filtered || d.lang === lang;
    const r = await client.query(SPA, { query: sq, using: SPARSE, filter, limit: K, offset: 0, with_payload: true, with_vector: false });
    same(r.points, sparseRef(sq, N, keep), `${round}: sparse-only ${t}`, 1e-5, 0, K);
  }
}

async function main() {
  for (const c of [HYB, SPA]) if ((await client.collectionExists(c)).exists) await client.deleteCollection(c);
  // QdrantVectorStore.construct_instance, HYBRID and SPARSE
  await client.createCollection(HYB, { vectors: { '': { size: DIM, distance: 'Cosine' } }, sparse_vectors: { [SPARSE]: { index: { on_disk: false } } } });
  await client.createCollection(SPA, { vectors: {}, sparse_vectors: { [SPARSE]: { index: { on_disk: false } } } });
  // _validate_collection_config
  const info = await client.getCollection(HYB);
  check(info.config.params.vectors['']?.size === DIM && info.config.params.vectors[''].distance === 'Cosine', `hybrid vectors config ${JSON.stringify(info.config.params.vectors)}`);
  check(info.config.params.sparse_vectors?.[SPARSE] !== undefined, `sparse_vectors config ${JSON.stringify(info.config.params.sparse_vectors)}`);
  const sinfo = await client.getCollection(SPA);
  check(JSON.stringify(sinfo.config.params.vectors) === '{}' && sinfo.config.params.sparse_vectors?.[SPARSE], `sparse-only config ${JSON.stringify(sinfo.config.params)}`);

  await upsert(HYB, docs, true);
  await upsert(SPA, docs, false);
  await checkHybrid('first');
  await checkSparseOnly('first');

  // get_by_ids (retrieve), with the vectors: indices come back sorted, values with them
  const some = docs.slice(0, 5);
  const got = await client.retrieve(HYB, { ids: some.map((d) => d.id), with_payload: true, with_vector: true });
  check(got.length === 5, `retrieve: ${got.length} points`);
  for (const p of got) {
    const d = docs.find((x) => canon(x.id) === p.id);
    const sv = p.vector[SPARSE], order = d.sparse.indices.map((ix, i) => [ix, d.sparse.values[i]]).sort((a, b) => a[0] - b[0]);
    check(JSON.stringify(sv.indices) === JSON.stringify(order.map((x) => x[0])), `retrieve ${p.id}: indices ${JSON.stringify(sv.indices)}`);
    check(sv.values.every((v, i) => Math.abs(v - order[i][1]) <= 1e-6 * Math.abs(order[i][1])), `retrieve ${p.id}: values`);
    check(p.vector[''].length === DIM && p.payload.page_content === d.text, `retrieve ${p.id}: dense vector and payload`);
  }
  const sgot = await client.retrieve(SPA, { ids: [some[0].id], with_vector: true });
  check(Object.keys(sgot[0].vector).join() === SPARSE, `sparse-only retrieve shows only the sparse vector: ${JSON.stringify(sgot[0].vector)}`);

  // add_texts again with the same ids (new texts), then delete
  for (let i = 0; i < 30; i++) { const d = makeDoc(docs[i * 7].id); docs[i * 7] = d; }
  const changed = docs.filter((_, i) => i % 7 === 0 && i < 210);
  await upsert(HYB, changed, true);
  await upsert(SPA, changed, false);
  const gone = docs.filter((_, i) => i % 11 === 3).map((d) => d.id);
  await client.delete(HYB, { wait: true, points: gone });
  await client.delete(SPA, { wait: true, points: gone });
  docs = docs.filter((d) => !gone.includes(d.id));
  await checkHybrid('after updates');
  await checkSparseOnly('after updates');

  // refusals, in Qdrant's words where it has them
  const p0 = point(docs[0]);
  const bad = (v) => ({ wait: true, points: [{ ...p0, vector: { '': docs[0].dense, [SPARSE]: v } }] });
  await failsWith(client.upsert(HYB, bad({ indices: [3, 1, 3], values: [1, 2, 3] })), 400, /must be unique/, 'duplicate indices');
  await failsWith(client.upsert(HYB, bad({ indices: [1, 2], values: [1] })), 400, /same length/, 'length mismatch');
  await failsWith(client.upsert(HYB, bad({ indices: [-1], values: [1] })), 400, null, 'negative index');
  await failsWith(client.upsert(HYB, { wait: true, points: [{ ...p0, vector: { '': docs[0].dense, other: { indices: [1], values: [1] } } }] }), 400, /Not existing vector name error: other/, 'unknown sparse name');
  await failsWith(client.upsert(HYB, { wait: true, points: [{ ...p0, vector: { [SPARSE]: docs[0].sparse } }] }), 400, /needs the dense vector/, 'no dense vector');
  await failsWith(client.upsert(SPA, { wait: true, points: [point(docs[0], true)] }), 400, /dimension 16, collection has 1/, 'dense vector in a sparse-only collection');
  await failsWith(client.upsert(SPA, { wait: true, points: [{ ...p0, vector: { '': [1], [SPARSE]: docs[0].sparse } }] }), 400, /only sparse vectors/, 'its stand-in vector given');
  const sq = querySparse('w1 w2');
  await failsWith(client.query(HYB, { prefetch: [{ using: 'nope', query: sq, limit: 5 }], query: { fusion: 'rrf' } }), 400, /Not existing vector name error: nope/, 'prefetch of an unknown vector');
  await failsWith(client.query(HYB, { query: sq, limit: 5 }), 400, /needs 'using'/, 'sparse query without using');
  await failsWith(client.query(HYB, { query: docs[0].dense, using: SPARSE, limit: 5 }), 400, /is sparse/, 'dense query of a sparse vector');
  await failsWith(client.query(SPA, { query: [0.5], using: '', limit: 5 }), 400, /only sparse vectors/, 'dense query of a sparse-only collection');
  await failsWith(client.query(HYB, { query: { indices: [1, 1], values: [1, 2] }, using: SPARSE }), 400, /must be unique/, 'duplicate query indices');
  await failsWith(client.createCollection('lc_bad', { vectors: { a: { size: 2, distance: 'Dot' }, b: { size: 2, distance: 'Dot' } } }), 400, /one dense vector/, 'two dense vectors');
  await failsWith(client.createCollection('lc_bad', { vectors: { a: { size: 2, distance: 'Dot' } }, sparse_vectors: { a: {} } }), 400, /name of the dense vector/, 'a sparse vector named as the dense one');
  // NaN is no JSON: the raw body is refused before anything is read
  const headers = { 'Content-Type': 'application/json', ...(apiKey ? { 'api-key': apiKey } : {}) };
  const raw = await fetch(`http://127.0.0.1:${qport}/collections/${HYB}/points?wait=true`, {
    method: 'PUT', headers, body: `{"points":[{"id":1,"vector":{"":${JSON.stringify(docs[0].dense)},"${SPARSE}":{"indices":[1],"values":[NaN]}}}]}` });
  check(raw.status === 400, `NaN value: status ${raw.status}`);

  await client.deleteCollection(HYB);
  await client.deleteCollection(SPA);
  console.log(`qdrant sparse: ${counted.checks} checks passed`);
}

main().catch((e) => {
  console.error('qdrant sparse test FAILED:', e?.message ?? e, e?.data ? JSON.stringify(e.data) : '');
  if (e?.stack) console.error(e.stack);
  process.exit(1);
});
