// tests/qdrant/test.mjs -- drives quiverd's Qdrant-compatible API with the official Qdrant
// JS client (@qdrant/js-client-rest, pinned in package-lock.json) and checks the answers
// against brute force in double precision and against quiverd's native API on the same
// data. Run by the "qdrant" check suite (tests/check_qdrant.c):
//   node tests/qdrant/test.mjs QDRANT_PORT NATIVE_PORT [API_KEY]
// Exits 0 when every check passes; prints the failing check and exits 1 otherwise.
import { QdrantClient as QdrantClient119 } from 'qdrant-js-client-1-19';
import assert from 'node:assert/strict';
import { connect } from './checks.mjs';

const { qport, apiKey, client, native } = connect('test.mjs');

// deterministic data: 1000 points, dim 16; ids 0..499 integers, 500..999 UUIDs
let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 - 0.5; };
const DIM = 16, N = 1000, COLL = 'qdrant_compat';
const uuidOf = (i) => `${(0x10000000 + i).toString(16)}-1234-4abc-8def-${(0xabc000000000 + i).toString(16)}`;
const idOf = (i) => (i < 500 ? i * 3 : uuidOf(i));
const points = [];
for (let i = 0; i < N; i++) {
  const vector = Array.from({ length: DIM }, rnd);
  points.push({ id: idOf(i), vector, payload: { n: i, lang: ['en', 'de', 'fr'][i % 3], year: 2000 + (i % 25),
    tags: i % 7 === 0 ? ['x', 'y'] : ['y'], metadata: { lang: i % 2 ? 'en' : 'de', source: `doc${i % 10}` },
    ...(i % 11 === 0 ? { note: null } : {}) } });
}
const byId = new Map(points.map((p) => [String(p.id), p]));
const cos = (a, b) => { let d = 0, x = 0, y = 0; for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i]; } return d / Math.sqrt(x * y); };
const brute = (q, pass, k, live) => [...live].filter(pass).map((p) => ({ id: p.id, score: cos(q, p.vector) }))
  .sort((a, b) => b.score - a.score).slice(0, k);
let live = new Set(points);
const queries = Array.from({ length: 20 }, () => Array.from({ length: DIM }, rnd));
let checks = 0;
const check = (cond, msg) => { checks++; assert.ok(cond, msg); };

// recall of hits against the exact answer, and every returned score equal to the exact one
function compare(hits, exact, what, minRecall = 0.9) {
  const want = new Set(exact.map((h) => String(h.id)));
  let found = 0;
  for (const h of hits) {
    const p = byId.get(String(h.id));
    check(p && live.has(p), `${what}: id ${h.id} is not a live point`);
    check(Math.abs(h.score - cos(hits.q, p.vector)) < 1e-4 || hits.q === undefined, `${what}: score of ${h.id}`);
    if (want.has(String(h.id))) found++;
  }
  check(hits.length === exact.length, `${what}: ${hits.length} hits, expected ${exact.length}`);
  check(found >= Math.floor(minRecall * exact.length), `${what}: recall ${found}/${exact.length}`);
}

async function main() {
  // a leftover from an interrupted run
  if ((await client.collectionExists(COLL)).exists) await client.deleteCollection(COLL);
  const root = await fetch(`http://127.0.0.1:${qport}/`).then((r) => r.json());
  check(typeof root.version === 'string', 'GET / has a version');
  // the reported version is one the current client (1.19) accepts: its compatibility
  // check prints no warning
  const warnings = [];
  const warn = console.warn;
  console.warn = (...a) => warnings.push(a.join(' '));
  const current = new QdrantClient119({ url: `http://127.0.0.1:${qport}`, apiKey, checkCompatibility: true });
  try {
    await current.getCollections();
    await new Promise((resolve) => setTimeout(resolve, 200));   // the check runs in the background
  } finally {
    console.warn = warn;
  }
  check(!warnings.some((w) => /incompatible|server version/i.test(w)), `version warning: ${warnings.join('; ')}`);

  await client.createCollection(COLL, { vectors: { size: DIM, distance: 'Cosine' }, hnsw_config: { m: 16, ef_construct: 200 } });
  check((await client.collectionExists(COLL)).exists === true, 'collection exists');
  check((await client.getCollections()).collections.some((c) => c.name === COLL), 'listed');
  await client.createPayloadIndex(COLL, { field_name: 'lang', field_schema: 'keyword', wait: true });
  for (let i = 0; i < N; i += 250) await client.upsert(COLL, { wait: true, points: points.slice(i, i + 250) });
  const info = await client.getCollection(COLL);
  check(info.points_count === N, `points_count ${info.points_count}`);
  check(info.config.params.vectors.size === DIM && info.config.params.vectors.distance === 'Cosine', 'config');
  check(info.payload_schema.lang?.data_type === 'keyword', 'payload_schema');

  // search without filter: equal to the native API on the same collection, near brute force
  for (const [qi, q] of queries.entries()) {
    const hits = await client.search(COLL, { vector: q, limit: 10, with_payload: true });
    hits.q = q;
    compare(hits, brute(q, () => true, 10, live), `search ${qi}`);
    check(hits.every((h) => h.payload.n === byId.get(String(h.id)).payload.n), 'payload of hits');
    const nat = await native('POST', `/collections/${COLL}/search`, { vector: q, k: 10 });
    check(nat.status === 200, `native search: ${JSON.stringify(nat.body)}`);
    check(nat.body.hits.length === hits.length, 'native hit count');
    nat.body.hits.forEach((h, i) => {
      check(Math.abs(h.score - hits[i].score) < 1e-5, `native score ${i}: ${h.score} vs ${hits[i].score}`);
      if (typeof hits[i].id === 'number') check(h.id === hits[i].id, `native id ${i}: ${h.id} vs ${hits[i].id}`);
    });
    // the universal query endpoint answers the same
    const qr = await client.query(COLL, { query: q, limit: 10 });
    check(JSON.stringify(qr.points.map((p) => p.id)) === JSON.stringify(hits.map((h) => h.id)), `query ${qi} = search`);
    const qr19 = await current.query(COLL, { query: q, limit: 10 });
    check(JSON.stringify(qr19.points.map((p) => p.id)) === JSON.stringify(hits.map((h) => h.id)), `query ${qi} (client 1.19)`);
  }

  // filtered searches against brute force
  const filters = [
    [{ must: [{ key: 'lang', match: { value: 'en' } }] }, (p) => p.payload.lang === 'en'],
    [{ must: [{ key: 'metadata.lang', match: { value: 'de' } }, { key: 'year', range: { gte: 2010, lt: 2015 } }] },
      (p) => p.payload.metadata.lang === 'de' && p.payload.year >= 2010 && p.payload.year < 2015],
    [{ should: [{ key: 'tags', match: { any: ['x'] } }, { key: 'year', range: { lte: 2001 } }], must_not: [{ key: 'lang', match: { value: 'fr' } }] },
      (p) => (p.payload.tags.includes('x') || p.payload.year <= 2001) && p.payload.lang !== 'fr'],
    [{ must: [{ is_empty: { key: 'note' } }, { key: 'lang', match: { except: ['de'] } }] },
      (p) => p.payload.note == null && p.payload.lang !== 'de'],
    [{ must: [{ has_id: [0, 3, 6, 9, uuidOf(600), uuidOf(601)] }] }, (p) => [0, 3, 6, 9, uuidOf(600), uuidOf(601)].includes(p.id)],
    [{ must_not: [{ has_id: [0, 3, 6] }], must: [{ key: 'n', range: { lt: 30 } }] }, (p) => p.payload.n < 30 && ![0, 3, 6].includes(p.id)],
  ];
  for (const [fi, [filter, pass]] of filters.entries()) {
    for (const q of queries.slice(0, 5)) {
      const hits = await client.search(COLL, { vector: q, limit: 10, filter });
      hits.q = q;
      compare(hits, brute(q, pass, 10, live), `filtered search ${fi}`, 0.8);
      check(hits.every((h) => pass(byId.get(String(h.id)))), `filter ${fi} respected`);
    }
    const cnt = await client.count(COLL, { filter, exact: true });
    check(cnt.count === [...live].filter(pass).length, `count ${fi}: ${cnt.count}`);
  }
  // batch search = single searches
  const batch = await client.searchBatch(COLL, { searches: queries.slice(0, 3).map((q) => ({ vector: q, limit: 5, filter: filters[0][0] })) });
  for (let i = 0; i < 3; i++) {
    const one = await client.search(COLL, { vector: queries[i], limit: 5, filter: filters[0][0] });
    check(JSON.stringify(batch[i].map((h) => h.id)) === JSON.stringify(one.map((h) => h.id)), `batch ${i}`);
  }
  // offset and score_threshold
  const top20 = await client.search(COLL, { vector: queries[0], limit: 20 });
  const off = await client.search(COLL, { vector: queries[0], limit: 10, offset: 10 });
  check(JSON.stringify(off.map((h) => h.id)) === JSON.stringify(top20.slice(10).map((h) => h.id)), 'offset');
  const thr = await client.search(COLL, { vector: queries[0], limit: 20, score_threshold: top20[4].score });
  check(thr.length === 5, `score_threshold kept ${thr.length}`);

  // scroll through everything: ids ascending, each once, payloads right
  const seen = [];
  let offset;
  do {
    const page = await client.scroll(COLL, { limit: 128, offset, with_payload: true });
    for (const p of page.points) { seen.push(p.id); check(p.payload.n === byId.get(String(p.id)).payload.n, 'scroll payload'); }
    offset = page.next_page_offset ?? undefined;
  } while (offset !== undefined);
  check(seen.length === N && new Set(seen.map(String)).size === N, `scroll saw ${seen.length}`);
  const ints = seen.filter((x) => typeof x === 'number');
  check(ints.every((x, i) => i === 0 || x > ints[i - 1]) && ints.length === 500, 'integer ids ascending, first');
  const fs = await client.scroll(COLL, { filter: filters[0][0], limit: 1000 });
  check(fs.points.length === [...live].filter(filters[0][1]).length && fs.next_page_offset == null, 'filtered scroll');

  // snapshots: create, list, recover into a new collection from the download URL (the
  // server fetches it from itself, with the API key), the same answers there
  const snap = await client.createSnapshot(COLL, { wait: true });
  check(snap && /\.snapshot$/.test(snap.name) && snap.size > 0 && /^[0-9a-f]{64}$/.test(snap.checksum),
    `createSnapshot: ${JSON.stringify(snap)}`);
  check((await client.listSnapshots(COLL)).some((x) => x.name === snap.name && x.checksum === snap.checksum &&
    x.size === snap.size && typeof x.creation_time === 'string'), 'listSnapshots shows it');
  const url = `http://127.0.0.1:${qport}/collections/${COLL}/snapshots/${snap.name}`;
  const RESTORED = `${COLL}_restored`;
  check(await client.recoverSnapshot(RESTORED, { location: url, checksum: snap.checksum, api_key: apiKey }) === true,
    'recoverSnapshot');
  check((await client.count(RESTORED)).count === N, 'restored count');
  for (const q of queries.slice(0, 5)) {
    const a = await client.search(COLL, { vector: q, limit: 10, with_payload: true });
    const b = await client.search(RESTORED, { vector: q, limit: 10, with_payload: true });
    check(JSON.stringify(a) === JSON.stringify(b), 'restored collection answers the same');
  }
  const rinfo = await client.getCollection(RESTORED);
  check(rinfo.payload_schema.lang?.data_type === 'keyword', 'restored payload index');
  const recoverFails = async (args, what) => {
    const e = await client.recoverSnapshot(RESTORED, args).then(() => null, (x) => x);
    check(e && e.status === 400, `${what} must be refused with 400: ${e?.status}`);
  };
  await recoverFails({ location: url, checksum: '0'.repeat(64), api_key: apiKey }, 'a wrong checksum');
  check((await client.count(RESTORED)).count === N, 'a refused recover changes nothing');
  const full = await client.createFullSnapshot({ wait: true });
  check((await client.listFullSnapshots()).some((x) => x.name === full.name), 'listFullSnapshots');
  check(await client.deleteFullSnapshot(full.name) === true, 'deleteFullSnapshot');
  check(await client.deleteSnapshot(COLL, snap.name) === true, 'deleteSnapshot');
  check(!(await client.listSnapshots(COLL)).some((x) => x.name === snap.name), 'deleted snapshot is gone');
  await client.deleteCollection(RESTORED);

  // retrieve by id (integer and UUID), with vectors
  const got = await client.retrieve(COLL, { ids: [3, uuidOf(777), 999999], with_vector: true });
  check(got.length === 2, `retrieve found ${got.length}`);
  for (const p of got) {
    const src = byId.get(String(p.id));
    check(src && p.payload.n === src.payload.n, 'retrieve payload');
    check(p.vector.every((x, i) => Math.abs(x - src.vector[i]) < 1e-6), 'retrieve vector');
  }
  const one = await client.api('points').getPoint({ collection_name: COLL, id: uuidOf(500) }).catch((e) => e);
  check(one.data?.result?.id === uuidOf(500), `GET point by UUID: ${JSON.stringify(one.data ?? one.message)}`);

  // payload updates
  await client.setPayload(COLL, { payload: { extra: 1 }, points: [0, uuidOf(501)], wait: true });
  let pp = await client.retrieve(COLL, { ids: [0, uuidOf(501)] });
  check(pp.length === 2 && pp.every((p) => p.payload.extra === 1 && p.payload.n !== undefined), 'set payload merges');
  await client.overwritePayload(COLL, { payload: { only: true }, points: [uuidOf(501)], wait: true });
  pp = await client.retrieve(COLL, { ids: [uuidOf(501)] });
  check(pp[0].id === uuidOf(501) && JSON.stringify(pp[0].payload) === '{"only":true}', 'overwrite payload');
  byId.get(uuidOf(501)).payload = { only: true };
  byId.get('0').payload.extra = 1;

  // delete by ids, then by filter
  const doomed = [6, 9, uuidOf(502), uuidOf(503)];
  await client.delete(COLL, { points: doomed, wait: true });
  for (const d of doomed) live.delete(byId.get(String(d)));
  check((await client.count(COLL)).count === N - 4, 'count after delete by id');
  check((await client.retrieve(COLL, { ids: doomed })).length === 0, 'deleted points are gone');
  const fr = { must: [{ key: 'lang', match: { value: 'fr' } }] };
  await client.delete(COLL, { filter: fr, wait: true });
  for (const p of [...live]) if (p.payload.lang === 'fr') live.delete(p);
  check((await client.count(COLL)).count === live.size, `count after delete by filter: ${live.size}`);
  check((await client.count(COLL, { filter: fr })).count === 0, 'no fr left');
  for (const q of queries.slice(0, 5)) {
    const hits = await client.search(COLL, { vector: q, limit: 10 });
    hits.q = q;
    compare(hits, brute(q, () => true, 10, live), 'search after deletes');
  }

  // unsupported features answer with errors, never silence
  const rejects = async (p, what) => { const e = await p.then(() => null, (x) => x); check(e && e.status >= 400, `${what} must fail`); };
  // one named dense vector and sparse vectors are served (sparse.mjs); a second dense one is not
  await rejects(client.createCollection('named_vecs', { vectors: { a: { size: 4, distance: 'Cosine' }, b: { size: 4, distance: 'Cosine' } } }), 'two dense vectors');
  await rejects(client.listShardSnapshots(COLL, 0), 'shard snapshots');
  await rejects(client.search(COLL, { vector: queries[0], filter: { must: [{ key: 'loc', geo_radius: { center: { lat: 0, lon: 0 }, radius: 1 } }] } }), 'geo filter');
  await rejects(client.search(COLL, { vector: [1, 2, 3] }), 'wrong dimension');
  await rejects(client.getCollection('no_such_collection'), 'missing collection');

  // Euclid: scores are distances, ascending
  await client.createCollection(`${COLL}_l2`, { vectors: { size: 2, distance: 'Euclid' } });
  await client.upsert(`${COLL}_l2`, { wait: true, points: [{ id: 1, vector: [0, 0] }, { id: 2, vector: [3, 4] }] });
  const l2 = await client.search(`${COLL}_l2`, { vector: [0, 0], limit: 2 });
  check(l2[0].id === 1 && l2[0].score === 0 && l2[1].id === 2 && Math.abs(l2[1].score - 5) < 1e-6, `euclid ${JSON.stringify(l2)}`);
  await client.deleteCollection(`${COLL}_l2`);

  await client.deleteCollection(COLL);
  check((await client.collectionExists(COLL)).exists === false, 'dropped');
  console.log(`qdrant compat: ${checks} checks passed`);
}

main().catch((e) => {
  console.error('qdrant compat test FAILED:', e?.message ?? e, e?.data ? JSON.stringify(e.data) : '');
  if (e?.stack) console.error(e.stack);
  process.exit(1);
});
