// tests/dashboard/test.mjs -- drives quiverd's web dashboard (GET /dashboard) in headless
// chromium through puppeteer-core (pinned in package-lock.json; it uses Debian's chromium
// and downloads no browser). Run by the "dashboard" check suite (tests/check_dashboard.c):
//   node tests/dashboard/test.mjs PORT API_KEY OUT_DIR [CHROMIUM]
// It creates collections and upserts points through the API, then, in the page: types the
// key, finds the collections in the table, reads the config and payload indexes, pages
// through the points, runs searches in the form (checked against brute force), waits
// for the live charts to draw (while searches run in the background) and runs the recall
// probe. Screenshots go to OUT_DIR: collections.png, config.png, points.png, search.png,
// charts.png, recall.png and page.png (the whole page). Exits 0 when every check passes; prints the failing
// check (and saves failure.png) and exits 1 otherwise. Waits are for selectors and
// conditions, never fixed sleeps.
import puppeteer from 'puppeteer-core';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';

const [port, key, outDir, chromium = process.env.CHROMIUM || '/usr/bin/chromium'] = process.argv.slice(2);
if (!port || !key || !outDir) { console.error('usage: test.mjs PORT API_KEY OUT_DIR [CHROMIUM]'); process.exit(2); }
const base = `http://127.0.0.1:${port}`;
const t0 = Date.now();
const step = (what) => console.log(`dashboard: ${((Date.now() - t0) / 1000).toFixed(1)} s  ${what}`);
// a stuck browser must not hang make test
setTimeout(() => { console.error('dashboard: FAIL: no result after 90 s'); process.exit(1); }, 90000).unref();

async function api(method, path, body) {
  const r = await fetch(base + path, { method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body) });
  const b = await r.json();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(b)}`);
  return b;
}

// deterministic data: 300 points of dim 8, payloads with an indexed keyword and integer
let seed = 2024;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 - 0.5; };
const COLL = 'dash_test', DIM = 8, N = 300, LANGS = ['en', 'de', 'fr'];
const points = Array.from({ length: N }, (_, i) => ({ id: i, vector: Array.from({ length: DIM }, rnd),
  payload: { title: `document ${i}`, lang: LANGS[i % 3], year: 2000 + (i % 25) } }));
const cos = (a, b) => { let d = 0, x = 0, y = 0; for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i]; } return d / Math.sqrt(x * y); };
const brute = (q, k, pass = () => true) => points.filter(pass).map((p) => ({ id: p.id, score: cos(q, p.vector) }))
  .sort((a, b) => b.score - a.score).slice(0, k);

async function main() {
  mkdirSync(outDir, { recursive: true });
  rmSync(`${outDir}/failure.png`, { force: true });        // from an earlier run
  await api('PUT', `/collections/${COLL}`, { dim: DIM, metric: 'cosine', index: { type: 'hnsw', m: 8, ef_construction: 64 },
    payload_index: { lang: 'keyword', year: 'integer' } });
  await api('PUT', `/collections/${COLL}/points`, { points });
  await api('PUT', '/collections/images', { dim: 4, metric: 'l2', index: { type: 'flat' } });
  await api('PUT', '/collections/images/points', { points: [{ id: 1, vector: [1, 2, 3, 4] }, { id: 2, vector: [4, 3, 2, 1] }] });
  step('collections created through the API');

  const browser = await puppeteer.launch({ executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--hide-scrollbars', '--font-render-hinting=none'] });
  let page;
  let load = true;
  try {
    page = await browser.newPage();
    page.setDefaultTimeout(15000);
    await page.setViewport({ width: 1280, height: 900 });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // 401 before the key is typed and 400 for the bad filter are by design
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[01]/.test(m.text())) errors.push(m.text()); });

    // searches in the background, so that the live charts have requests to show
    const background = (async () => {
      for (let i = 0; load; i++) await api('POST', `/collections/${COLL}/search`, { vector: points[i % N].vector, k: 10 });
    })().catch((e) => e);

    // ---- load the page; without a key it says one is needed
    await page.goto(`${base}/dashboard?poll=250`, { waitUntil: 'load' });
    await page.waitForFunction(() => /API key/.test(document.querySelector('#banner').textContent));
    // the page's weight: the document and every file it loaded from /dashboard
    const files = await page.evaluate(() => performance.getEntriesByType('navigation').concat(
      performance.getEntriesByType('resource')).filter((e) => new URL(e.name).pathname.startsWith('/dashboard'))
      .map((e) => [new URL(e.name).pathname, e.decodedBodySize]));
    const weight = files.reduce((sum, [, n]) => sum + n, 0);
    step(`page loaded: ${files.map(([f, n]) => `${f} ${n} B`).join(', ')}`);
    assert.deepEqual(files.map(([f]) => f).sort(), ['/dashboard', '/dashboard/app.js', '/dashboard/chart.js', '/dashboard/style.css']);
    assert.ok(files.every(([, n]) => n > 0) && weight < 200 * 1024, `the page weighs ${weight} bytes (limit 200 KB)`);
    console.log(`dashboard: page weight ${weight} bytes (${(weight / 1024).toFixed(1)} KiB) in ${files.length} files`);

    // ---- the key, kept in sessionStorage; a wrong one is said to be refused
    await page.type('#api-key', 'wrong-key');
    await page.click('#key-form button');
    await page.waitForFunction(() => /refused this API key/.test(document.querySelector('#banner').textContent));
    await page.$eval('#api-key', (e) => { e.value = ''; });
    await page.type('#api-key', key);
    await page.click('#key-form button');
    await page.waitForSelector(`#collections tr[data-name="${COLL}"]`);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('quiver.apiKey')), key, 'key kept in sessionStorage');
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector(`#collections tr[data-name="${COLL}"]`);
    assert.equal(await page.$eval('#api-key', (e) => e.value), key, 'the key survives a reload of the tab');
    assert.ok(await page.$eval('#banner', (e) => e.hidden), 'no banner once the key is in');

    // ---- the collections table
    const row = await page.$$eval(`#collections tr[data-name="${COLL}"] td`, (tds) => tds.map((t) => t.textContent));
    assert.deepEqual(row.slice(0, 5), [COLL, String(DIM), 'cosine', 'hnsw · m 8 · ef_c 64', String(N)], `table row: ${row}`);
    assert.match(row[5], /^[\d.]+ (B|KiB|MiB)$/, `memory cell: ${row[5]}`);
    const flat = await page.$$eval('#collections tr[data-name="images"] td', (tds) => tds.map((t) => t.textContent));
    assert.deepEqual(flat.slice(0, 5), ['images', '4', 'l2', 'flat', '2'], `table row: ${flat}`);
    await page.$eval('#collections-card', (e) => e.scrollIntoView());
    await (await page.$('#collections-card')).screenshot({ path: `${outDir}/collections.png` });
    step('collections table read');

    // ---- config and payload indexes
    await page.click(`#collections tr[data-name="${COLL}"]`);
    await page.waitForSelector('#coll-card:not([hidden]) #tab-config:not([hidden])');
    const config = await page.$eval('#config', (e) => e.textContent);
    assert.match(config, /index\.typehnsw/, `config: ${config}`);
    assert.match(config, /index\.ef_search64/, `config: ${config}`);
    const pidx = await page.$$eval('#payload-index tbody tr', (trs) => trs.map((t) => t.textContent).sort());
    assert.deepEqual(pidx, ['langkeyword', 'yearinteger'], `payload indexes: ${pidx}`);
    await (await page.$('#coll-card')).screenshot({ path: `${outDir}/config.png` });

    // ---- point browser: two pages of 20, forward and back
    await page.click('#tabs button[data-tab="points"]');
    const firstId = () => page.$eval('#points tbody tr td', (td) => td.textContent);
    await page.waitForFunction(() => document.querySelectorAll('#points tbody tr').length === 20);
    assert.equal(await firstId(), '0');
    assert.match(await page.$eval('#points tbody tr td.payload', (e) => e.textContent), /"title":"document 0"/);
    await page.click('#points-next');
    await page.waitForFunction(() => document.querySelector('#points tbody tr td').textContent === '20');
    assert.equal(await page.$eval('#points-info', (e) => e.textContent), 'points 21–40 of 300 (in id order)');
    await page.click('#points-prev');
    await page.waitForFunction(() => document.querySelector('#points tbody tr td').textContent === '0');
    assert.ok(await page.$eval('#points-prev', (e) => e.disabled), 'no page before the first');
    await (await page.$('#coll-card')).screenshot({ path: `${outDir}/points.png` });
    step('points paged');

    // ---- search by vector, exact, against brute force
    await page.click('#tabs button[data-tab="search"]');
    const q = Array.from({ length: DIM }, rnd);
    await page.click('input[name=by][value=vector]');
    await page.$eval('#q-vector', (e, v) => { e.value = v; }, JSON.stringify(q));
    await page.$eval('#q-k', (e) => { e.value = '4'; });
    await page.click('#q-exact');
    await page.click('#search-form button[type=submit]');
    await page.waitForFunction(() => /4 hits/.test(document.querySelector('#search-info').textContent));
    const hitsOf = () => page.$$eval('#hits tbody tr', (trs) => trs.map((t) => ({ id: Number(t.dataset.id),
      score: Number(t.querySelector('.score').textContent), payload: JSON.parse(t.querySelector('.payload').textContent) })));
    let hits = await hitsOf();
    let want = brute(q, 4);
    assert.deepEqual(hits.map((h) => h.id), want.map((h) => h.id), 'exact search by vector');
    hits.forEach((h, i) => assert.ok(Math.abs(h.score - want[i].score) < 1e-4, `score of ${h.id}: ${h.score} vs ${want[i].score}`));
    hits.forEach((h) => assert.deepEqual(h.payload, points[h.id].payload));

    // ---- search by point id with a filter through the index
    await page.click('#q-exact');
    await page.click('input[name=by][value=id]');
    await page.$eval('#q-id', (e) => { e.value = '9'; });
    await page.$eval('#q-k', (e) => { e.value = '5'; });
    await page.$eval('#q-ef', (e) => { e.value = '128'; });
    await page.$eval('#q-filter', (e) => { e.value = '{"must":[{"key":"lang","match":"en"},{"key":"year","range":{"gte":2005}}]}'; });
    await page.click('#search-form button[type=submit]');
    await page.waitForFunction(() => /5 hits/.test(document.querySelector('#search-info').textContent));
    hits = await hitsOf();
    want = brute(points[9].vector, 5, (p) => p.payload.lang === 'en' && p.payload.year >= 2005);
    assert.equal(hits[0].id, 9, 'a point is its own nearest neighbour');
    assert.deepEqual(hits.map((h) => h.id), want.map((h) => h.id), 'filtered search by id');
    hits.forEach((h) => assert.ok(h.payload.lang === 'en' && h.payload.year >= 2005, `hit ${h.id} passes the filter`));
    const took = await page.$eval('#search-info', (e) => e.textContent);
    assert.match(took, /\d+ (µs|ms) in quiverd · [\d.]+ (µs|ms) round trip/, took);
    await (await page.$('#coll-card')).screenshot({ path: `${outDir}/search.png` });
    step(`searches read from the form: ${took}`);

    // ---- a bad filter is an error in the form, not a crash
    await page.$eval('#q-filter', (e) => { e.value = '{"must":[{"key":"lang","match":'; });
    await page.click('#search-form button[type=submit]');
    await page.waitForSelector('#search-info.err');
    await page.$eval('#q-filter', (e) => { e.value = '{"must":[{"key":"lang","range":"x"}]}'; });
    await page.click('#search-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#search-info').className.includes('err') &&
      !/not JSON/.test(document.querySelector('#search-info').textContent));

    // ---- live charts: several samples with requests drawn
    await page.waitForFunction(() => Number(document.querySelector('#rps-chart').dataset.points) >= 24 &&
      Number(document.querySelector('#lat-chart').dataset.points) >= 6);
    const legend = await page.evaluate(() => [...document.querySelectorAll('canvas')].map((c) => c.dataset.points));
    await page.$eval('#charts-card', (e) => e.scrollIntoView());
    await (await page.$('#charts-card')).screenshot({ path: `${outDir}/charts.png` });
    step(`charts drawn (points per chart: ${legend})`);

    // ---- recall probe
    await page.click('#tabs button[data-tab="recall"]');
    await page.$eval('#r-n', (e) => { e.value = '40'; });
    await page.click('#recall-form button[type=submit]');
    await page.waitForFunction(() => /40 queries/.test(document.querySelector('#recall-info').textContent), { timeout: 20000 });
    const recall = await page.$$eval('#recall tbody tr', (trs) => trs.map((t) => [...t.children].map((c) => Number(c.textContent))));
    assert.deepEqual(recall.map((r) => r[0]), [10, 20, 40, 80, 160], `recall rows: ${recall}`);
    recall.forEach(([ef, r]) => assert.ok(r >= 0 && r <= 1, `recall at ef ${ef}: ${r}`));
    assert.ok(recall[4][1] >= 0.95, `recall at ef 160 on 300 points: ${recall[4][1]}`);
    assert.equal(await page.$eval('#recall-chart', (e) => e.dataset.points), '5');
    await (await page.$('#coll-card')).screenshot({ path: `${outDir}/recall.png` });
    step(`recall probe: ${recall.map(([ef, r]) => `ef ${ef} ${r}`).join(', ')}`);

    await page.screenshot({ path: `${outDir}/page.png`, fullPage: true });
    load = false;
    const bg = await background;
    assert.ok(!(bg instanceof Error), `background searches: ${bg && bg.message}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  } catch (e) {
    if (page) await page.screenshot({ path: `${outDir}/failure.png`, fullPage: true }).catch(() => {});
    throw e;
  } finally {
    load = false;
    await browser.close();
  }
  await api('DELETE', `/collections/${COLL}`);
  await api('DELETE', '/collections/images');
  step(`passed; screenshots in ${outDir}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(`dashboard: FAIL: ${e.message}`);
  process.exit(1);
});
