// tests/qdrant/features.mjs -- aliases, updateVectors / deleteVectors, updateCollection,
// facet, search/groups and query/groups through the official Qdrant JS client, each
// checked against a reference computed here (brute force in double precision, counts of
// the payloads), and the errors of each (unknown alias, name clash, facet on an
// unindexed field, update of a missing point). Then the re-index through an alias switch
// under a stream of searches: no search may fail (never "collection not found").
// Run by the "qdrant" check suite (tests/check_qdrant.c):
//   node tests/qdrant/features.mjs QDRANT_PORT NATIVE_PORT [API_KEY]
import { check, connect, counted, cos, failsWith } from './checks.mjs';

const { qport, apiKey, client, native } = connect('features.mjs');

let seed = 777;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 - 0.5; };
const DIM = 8, N = 400, COLL = 'feat_v1';
const LANGS = ['en', 'de', 'fr', 'it', 'es'];
const makePoints = (n, base = 0) => Array.from({ length: n }, (_, i) => ({
  id: base + i,
  vector: Array.from({ length: DIM }, rnd),
  payload: { lang: LANGS[i % 5], year: 2000 + (i % 7), tags: [`t${i % 3}`, 'all'], n: i, ...(i % 17 === 0 ? { lang: null } : {}) },
}));

async function aliases(points) {
  // create, list, use through every kind of endpoint
  check(await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: COLL, alias_name: 'feat' } }] }) === true, 'create alias');
  const all = await client.getAliases();
  check(all.aliases.some((a) => a.alias_name === 'feat' && a.collection_name === COLL), `getAliases: ${JSON.stringify(all)}`);
  const mine = await client.getCollectionAliases(COLL);
  check(mine.aliases.length === 1 && mine.aliases[0].alias_name === 'feat', `getCollectionAliases: ${JSON.stringify(mine)}`);
  check((await client.getCollectionAliases('feat')).aliases.length === 1, 'collection aliases through the alias');
  const q = points[3].vector;
  const viaName = await client.search(COLL, { vector: q, limit: 5 });
  const viaAlias = await client.search('feat', { vector: q, limit: 5 });
  check(JSON.stringify(viaName) === JSON.stringify(viaAlias), 'search through the alias = search by name');
  check((await client.count('feat')).count === N, 'count through the alias');
  check((await client.getCollection('feat')).points_count === N, 'getCollection through the alias');
  await client.upsert('feat', { wait: true, points: [{ id: 100000, vector: points[0].vector, payload: { lang: 'xx' } }] });
  check((await client.count(COLL)).count === N + 1, 'upsert through the alias lands in the collection');
  await client.delete('feat', { wait: true, points: [100000] });
  check((await client.count(COLL)).count === N, 'delete through the alias');
  const nat = await native('POST', '/collections/feat/search', { vector: q, k: 5 });
  check(nat.status === 200 && nat.body.hits.length === 5 && nat.body.hits[0].id === viaName[0].id, `native search through the alias: ${JSON.stringify(nat.body)}`);
  const natList = await native('GET', '/aliases');
  check(natList.status === 200 && natList.body.aliases.some((a) => a.alias_name === 'feat'), 'native GET /aliases');

  // rename and delete, several actions in one list
  await client.updateCollectionAliases({ actions: [
    { rename_alias: { old_alias_name: 'feat', new_alias_name: 'feat2' } },
    { create_alias: { collection_name: COLL, alias_name: 'feat3' } },
  ] });
  const names = (await client.getCollectionAliases(COLL)).aliases.map((a) => a.alias_name).sort();
  check(JSON.stringify(names) === '["feat2","feat3"]', `after rename: ${names}`);

  // errors: unknown alias (404), name clashes (409), a list that fails is not applied
  await failsWith(client.search('no_such_alias', { vector: q, limit: 1 }), 404, /doesn't exist|not found/i, 'search an unknown alias');
  await failsWith(client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: 'no_such_alias' } }] }), 404, /no_such_alias/, 'delete an unknown alias');
  await failsWith(client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'no_such_coll', alias_name: 'x' } }] }), 404, /no_such_coll/, 'alias of a missing collection');
  await failsWith(client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: COLL, alias_name: COLL } }] }), 409, /collection/, 'alias named like a collection');
  await failsWith(client.createCollection('feat2', { vectors: { size: DIM, distance: 'Cosine' } }), 409, /alias/, 'collection named like an alias');
  await failsWith(client.updateCollectionAliases({ actions: [
    { delete_alias: { alias_name: 'feat3' } },
    { delete_alias: { alias_name: 'no_such_alias' } },
  ] }), 404, /no_such_alias/, 'a failing action list');
  check((await client.getCollectionAliases(COLL)).aliases.length === 2, 'a failing action list changes nothing');
  await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: 'feat2' } }, { delete_alias: { alias_name: 'feat3' } }] });
  check((await client.getCollectionAliases(COLL)).aliases.length === 0, 'aliases deleted');
}

async function vectors(points, live) {
  const nv = Array.from({ length: DIM }, (_, j) => (j === 2 ? 1 : 0));
  check((await client.updateVectors(COLL, { wait: true, points: [{ id: 7, vector: nv }] })).status === 'completed', 'updateVectors');
  const [p] = await client.retrieve(COLL, { ids: [7], with_vector: true, with_payload: true });
  check(p.vector.every((x, j) => Math.abs(x - nv[j]) < 1e-6), `the new vector: ${p.vector}`);
  check(JSON.stringify(p.payload) === JSON.stringify(points[7].payload), `payload kept: ${JSON.stringify(p.payload)}`);
  live[7] = { ...points[7], vector: nv };
  const hits = await client.search(COLL, { vector: nv, limit: 3, params: { exact: true } });
  const exact = live.map((x) => ({ id: x.id, score: cos(nv, x.vector) })).sort((a, b) => b.score - a.score);
  check(hits[0].id === 7 && Math.abs(hits[0].score - 1) < 1e-5, `searching the new vector finds it: ${JSON.stringify(hits[0])}`);
  check(hits.every((h, i) => h.id === exact[i].id && Math.abs(h.score - exact[i].score) < 1e-5), 'exact search after updateVectors = brute force');
  await failsWith(client.updateVectors(COLL, { wait: true, points: [{ id: 8, vector: nv }, { id: 999999, vector: nv }] }), 404, /999999/, 'updateVectors of a missing point');
  const [p8] = await client.retrieve(COLL, { ids: [8], with_vector: true });
  check(p8.vector.every((x, j) => Math.abs(x - points[8].vector[j]) < 1e-5), 'a failed updateVectors changes nothing');
  await failsWith(client.updateVectors(COLL, { points: [{ id: 8, vector: [1, 2] }] }), 400, null, 'updateVectors with a wrong dimension');
  await failsWith(client.deleteVectors(COLL, { points: [7], vector: [''] }), 400, /named vectors/, 'deleteVectors (single unnamed vector)');
}

async function updateCollection(live) {
  const res = await client.updateCollection(COLL, { hnsw_config: { m: 8, ef_construct: 64 }, optimizers_config: { indexing_threshold: 10000 } });
  check(res === true, `updateCollection: ${res}`);
  const info = await client.getCollection(COLL);
  check(info.config.hnsw_config.m === 8 && info.config.hnsw_config.ef_construct === 64, `new hnsw_config: ${JSON.stringify(info.config.hnsw_config)}`);
  // the rebuilt graph: recall against brute force
  let found = 0, want = 0;
  for (let i = 0; i < 10; i++) {
    const q = Array.from({ length: DIM }, rnd);
    const exact = live.map((x) => ({ id: x.id, score: cos(q, x.vector) })).sort((a, b) => b.score - a.score).slice(0, 10);
    const hits = await client.search(COLL, { vector: q, limit: 10, params: { hnsw_ef: 64 } });
    const ids = new Set(hits.map((h) => h.id));
    found += exact.filter((e) => ids.has(e.id)).length;
    want += 10;
  }
  check(found >= 0.9 * want, `recall after updateCollection ${found}/${want}`);
  await failsWith(client.updateCollection(COLL, { hnsw_config: { m: 1000 } }), 400, /m/, 'updateCollection with m out of range');

  // quantization added, changed and dropped: the index is rebuilt on the new codes, and a
  // search with rescore off returns their estimates, with rescore the exact scores
  const q = Array.from({ length: DIM }, rnd);
  const exact = live.map((x) => ({ id: x.id, score: cos(q, x.vector) })).sort((a, b) => b.score - a.score).slice(0, 10);
  const exactOf = new Map(live.map((x) => [x.id, cos(q, x.vector)]));
  const inexact = (hits) => hits.filter((h) => Math.abs(h.score - exactOf.get(h.id)) > 1e-4).length;
  for (const [qc, shown] of [[{ binary: { always_ram: true } }, 'binary'], [{ scalar: { type: 'int8', quantile: 0.99 } }, 'scalar']]) {
    check(await client.updateCollection(COLL, { quantization_config: qc }) === true, `updateCollection to ${shown}`);
    const qi = await client.getCollection(COLL);
    check(qi.config.quantization_config && qi.config.quantization_config[shown], `quantization_config now ${shown}: ${JSON.stringify(qi.config.quantization_config)}`);
    const est = await client.search(COLL, { vector: q, limit: 10, params: { hnsw_ef: 64, quantization: { rescore: false } } });
    check(inexact(est) > 0, `${shown}, rescore off: estimated scores (${inexact(est)} of ${est.length} differ)`);
    const hits = await client.search(COLL, { vector: q, limit: 10, params: { hnsw_ef: 64, quantization: { rescore: true } } });
    const ids = new Set(hits.map((h) => h.id));
    const got = exact.filter((e) => ids.has(e.id)).length;
    check(inexact(hits) === 0 && got >= 8, `${shown}, rescore on: exact scores (${inexact(hits)} differ), recall ${got}/10`);
  }
  await failsWith(client.updateCollection(COLL, { quantization_config: { product: { compression: 'x16' } } }), 400, /product/, 'updateCollection to product quantization');
  await failsWith(client.updateCollection(COLL, { quantization_config: 'Enabled' }), 400, /Disabled/, 'updateCollection with an unknown quantization string');
  check((await client.getCollection(COLL)).config.quantization_config.scalar, 'a refused change leaves the codes');
  check(await client.updateCollection(COLL, { quantization_config: 'Disabled' }) === true, 'updateCollection: quantization Disabled');
  check(!(await client.getCollection(COLL)).config.quantization_config, 'no quantization_config once Disabled');
  const plain = await client.search(COLL, { vector: q, limit: 10, params: { hnsw_ef: 64, quantization: { rescore: false } } });
  check(inexact(plain) === 0, `float again: exact scores (${inexact(plain)} differ)`);
}

async function facets(live) {
  const ref = (field, pass) => {
    const m = new Map();
    for (const p of live) {
      if (!pass(p)) continue;
      const v = p.payload[field];
      for (const x of Array.isArray(v) ? [...new Set(v)] : v == null ? [] : [v]) m.set(x, (m.get(x) ?? 0) + 1);
    }
    return m;
  };
  const same = (hits, m, what) => {
    check(hits.length === Math.min(m.size, 10), `${what}: ${hits.length} values, expected ${m.size}`);
    for (const h of hits) check(m.get(h.value) === h.count, `${what}: ${h.value} counted ${h.count}, expected ${m.get(h.value)}`);
    check(hits.every((h, i) => i === 0 || hits[i - 1].count >= h.count), `${what}: most frequent first`);
  };
  same((await client.facet(COLL, { key: 'lang' })).hits, ref('lang', () => true), 'facet lang');
  same((await client.facet(COLL, { key: 'lang', filter: { must: [{ key: 'year', range: { gte: 2004 } }] } })).hits,
    ref('lang', (p) => p.payload.year >= 2004), 'facet lang, filtered');
  same((await client.facet(COLL, { key: 'year', exact: true })).hits, ref('year', () => true), 'facet year (integer)');
  same((await client.facet(COLL, { key: 'tags' })).hits, ref('tags', () => true), 'facet tags (arrays)');
  const two = (await client.facet(COLL, { key: 'year', limit: 2 })).hits;
  check(two.length === 2, `facet limit: ${two.length}`);
  await failsWith(client.facet(COLL, { key: 'n' }), 400, /Index required/, 'facet on an unindexed field');
}

async function groups(live) {
  const refGroups = (q, field, size, limit, pts = live) => {
    const ranked = pts.map((p) => ({ p, score: cos(q, p.vector) })).sort((a, b) => b.score - a.score);
    const out = [];
    for (const { p, score } of ranked) {
      const v = p.payload[field];
      for (const x of Array.isArray(v) ? v : v == null ? [] : [v]) {
        let g = out.find((o) => o.id === x);
        if (!g) { if (out.length === limit) continue; g = { id: x, hits: [] }; out.push(g); }
        if (g.hits.length < size) g.hits.push({ id: p.id, score });
      }
    }
    return out;
  };
  const same = (got, want, what) => {
    check(got.length === want.length, `${what}: ${got.length} groups, expected ${want.length}`);
    got.forEach((g, i) => {
      check(g.id === want[i].id, `${what}: group ${i} is ${g.id}, expected ${want[i].id}`);
      check(g.hits.length === want[i].hits.length, `${what}: group ${g.id} has ${g.hits.length} hits`);
      g.hits.forEach((h, j) => check(h.id === want[i].hits[j].id && Math.abs(h.score - want[i].hits[j].score) < 1e-5,
        `${what}: group ${g.id} hit ${j}: ${h.id} ${h.score} vs ${want[i].hits[j].id} ${want[i].hits[j].score}`));
    });
  };
  for (let i = 0; i < 5; i++) {
    const q = Array.from({ length: DIM }, rnd);
    const s = await client.searchPointGroups(COLL, { vector: q, group_by: 'lang', group_size: 3, limit: 4, params: { exact: true }, with_payload: true });
    same(s.groups, refGroups(q, 'lang', 3, 4), `search/groups ${i}`);
    check(s.groups.every((g) => g.hits.every((h) => h.payload.lang === g.id)), 'group members hold the group value');
    const qg = await client.queryGroups(COLL, { query: q, group_by: 'year', group_size: 2, limit: 7, params: { exact: true } });
    same(qg.groups, refGroups(q, 'year', 2, 7), `query/groups ${i}`);
    const tg = await client.queryGroups(COLL, { query: q, group_by: 'tags', group_size: 2, limit: 10, params: { exact: true } });
    same(tg.groups, refGroups(q, 'tags', 2, 10), `query/groups by an array field ${i}`);
    const f = await client.searchPointGroups(COLL, { vector: q, group_by: 'lang', group_size: 2, limit: 3, params: { exact: true },
      filter: { must: [{ key: 'year', match: { value: 2003 } }] } });
    same(f.groups, refGroups(q, 'lang', 2, 3, live.filter((p) => p.payload.year === 2003)), `search/groups filtered ${i}`);
  }
  await failsWith(client.searchPointGroups(COLL, { vector: [1, 2], group_by: 'lang', group_size: 2, limit: 3 }), 400, null, 'groups with a wrong dimension');
  await failsWith(client.queryGroups(COLL, { query: Array(DIM).fill(0.1), group_by: 'lang', group_size: 0, limit: 3 }), 400, null, 'group_size 0');
}

// Re-index under a stream of searches: each round fills a new collection, switches the
// alias to it in one action list and drops the old one at once.
async function aliasSwitchUnderSearches() {
  const ROUNDS = 6, READERS = 4;
  let gen = 0, stop = false, searches = 0;
  const errors = [];
  const fill = async (name, g) => {
    await client.createCollection(name, { vectors: { size: DIM, distance: 'Cosine' } });
    await client.upsert(name, { wait: true, points: makePoints(50, g * 1000) });
  };
  await fill('reidx_0', 0);
  await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'reidx_0', alias_name: 'reidx' } }] });
  const reader = async () => {
    while (!stop) {
      const q = Array.from({ length: DIM }, rnd);
      try {
        const hits = await client.search('reidx', { vector: q, limit: 3 });
        searches++;
        const g = Math.floor(hits[0].id / 1000);
        if (hits.length !== 3 || hits.some((h) => Math.floor(h.id / 1000) !== g) || g > gen) errors.push(`mixed or unknown hits ${JSON.stringify(hits)}`);
      } catch (e) {
        errors.push(`${e.status}: ${JSON.stringify(e.data ?? e.message)}`);
      }
    }
  };
  const readers = Array.from({ length: READERS }, reader);
  for (let g = 1; g <= ROUNDS; g++) {
    await fill(`reidx_${g}`, g);
    gen = g;
    await client.updateCollectionAliases({ actions: [
      { delete_alias: { alias_name: 'reidx' } },
      { create_alias: { collection_name: `reidx_${g}`, alias_name: 'reidx' } },
    ] });
    await client.deleteCollection(`reidx_${g - 1}`);
  }
  await new Promise((r) => setTimeout(r, 50));
  stop = true;
  await Promise.all(readers);
  check(errors.length === 0, `${errors.length} of ${searches} searches failed during the alias switches: ${errors.slice(0, 3).join('; ')}`);
  check(searches > ROUNDS, `only ${searches} searches ran`);
  const after = await client.search('reidx', { vector: Array(DIM).fill(0.1), limit: 1 });
  check(Math.floor(after[0].id / 1000) === ROUNDS, 'the alias names the last collection');
  check((await client.getAliases()).aliases.filter((a) => a.alias_name === 'reidx').length === 1, 'one alias left');
  await client.deleteCollection(`reidx_${ROUNDS}`);
  check(!(await client.getAliases()).aliases.some((a) => a.alias_name === 'reidx'), 'dropping a collection drops its aliases');
  console.log(`alias switch: ${searches} searches during ${ROUNDS} re-indexes, none failed`);
}

async function main() {
  for (const c of [COLL, 'reidx_0']) if ((await client.collectionExists(c)).exists) await client.deleteCollection(c);
  const points = makePoints(N);
  await client.createCollection(COLL, { vectors: { size: DIM, distance: 'Cosine' } });
  await client.createPayloadIndex(COLL, { field_name: 'lang', field_schema: 'keyword', wait: true });
  await client.createPayloadIndex(COLL, { field_name: 'year', field_schema: 'integer', wait: true });
  await client.createPayloadIndex(COLL, { field_name: 'tags', field_schema: 'keyword', wait: true });
  await client.upsert(COLL, { wait: true, points });
  const live = points.map((p) => ({ ...p }));
  await aliases(points);
  await vectors(points, live);
  await updateCollection(live);
  await facets(live);
  await groups(live);
  await aliasSwitchUnderSearches();
  await client.deleteCollection(COLL);
  console.log(`qdrant features: ${counted.checks} checks passed`);
}

main().catch((e) => {
  console.error('qdrant features test FAILED:', e?.message ?? e, e?.data ? JSON.stringify(e.data) : '');
  if (e?.stack) console.error(e.stack);
  process.exit(1);
});
