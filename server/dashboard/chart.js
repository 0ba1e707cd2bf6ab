// server/dashboard/chart.js -- a small line chart on a <canvas>: a few series of [x, y]
// points (y null breaks a line), nice ticks, a legend with each series' last value. The
// dashboard's live charts and the recall plot; no library, so the page stays small and
// works air-gapped.
'use strict';

// 1, 2 or 5 times a power of ten, at least x
function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  const m = x / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

// ticks from lo to hi; with round, the last one is hi rounded up (an axis ends on a tick)
function ticks(lo, hi, n, round) {
  const step = niceStep((hi - lo) / n || 1);
  const end = round ? Math.ceil(hi / step - 1e-9) * step : hi;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= end + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

// opts: series [{name, color, points, fill (an area colour, optional)}], x/yFormat (value -> text), xLog, xTicks (values),
// xMin/xMax, yMin/yMax (else from the data, from 0 up), dots, empty (text when no data).
function drawChart(canvas, opts) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(canvas);
  const ink = css.getPropertyValue('--ink').trim() || '#333', faint = css.getPropertyValue('--grid').trim() || '#e5e7eb';
  g.font = '11px ' + css.fontFamily;

  const pts = opts.series.flatMap((s) => s.points.filter((p) => p[1] !== null && isFinite(p[1])));
  const fx = opts.xFormat || ((v) => String(v)), fy = opts.yFormat || ((v) => String(v));
  const tx = opts.xLog ? Math.log2 : (v) => v;
  let xMin = opts.xMin ?? Math.min(...pts.map((p) => p[0])), xMax = opts.xMax ?? Math.max(...pts.map((p) => p[0]));
  let yMin = opts.yMin ?? Math.min(0, ...pts.map((p) => p[1])), yMax = opts.yMax ?? Math.max(...pts.map((p) => p[1]));
  if (!pts.length) { xMin = xMin ?? 0; xMax = xMax ?? 1; yMin = opts.yMin ?? 0; yMax = opts.yMax ?? 1; }
  if (!(yMax > yMin)) yMax = yMin + 1;
  if (!(xMax > xMin)) xMax = xMin + 1;
  const yt = opts.yTicks || ticks(yMin, yMax, 4, true);
  yMax = Math.max(yMax, yt[yt.length - 1]);
  yMin = Math.min(yMin, yt[0]);

  const left = 8 + Math.max(...yt.map((v) => g.measureText(fy(v)).width)), right = 14, top = 26, bottom = 22;
  const X = (v) => left + (tx(v) - tx(xMin)) / (tx(xMax) - tx(xMin)) * (w - left - right);
  const Y = (v) => h - bottom - (v - yMin) / (yMax - yMin) * (h - top - bottom);

  g.lineWidth = 1;
  g.fillStyle = ink;
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  for (const v of yt) {
    g.strokeStyle = faint;
    g.beginPath(); g.moveTo(left, Math.round(Y(v)) + 0.5); g.lineTo(w - right, Math.round(Y(v)) + 0.5); g.stroke();
    g.fillText(fy(v), left - 5, Y(v));
  }
  g.textBaseline = 'top';
  g.textAlign = 'center';
  const xt = opts.xTicks || ticks(xMin, xMax, 5);
  for (const v of xt) {
    if (v < xMin || v > xMax) continue;
    const half = g.measureText(fx(v)).width / 2;
    g.fillText(fx(v), Math.min(Math.max(X(v), left + half), w - 2 - half), h - bottom + 5);
  }

  let drawn = 0;
  for (const s of opts.series) {
    if (s.fill) {                           // a light area under the line, so a line on top stays visible
      g.fillStyle = s.fill;
      let run = [];
      const flush = () => {
        if (run.length > 1) {
          g.beginPath();
          g.moveTo(X(run[0][0]), Y(yMin));
          for (const [x, y] of run) g.lineTo(X(x), Y(y));
          g.lineTo(X(run[run.length - 1][0]), Y(yMin));
          g.fill();
        }
        run = [];
      };
      for (const p of s.points) if (p[1] === null || !isFinite(p[1])) flush(); else run.push(p);
      flush();
    }
    g.strokeStyle = s.color;
    g.fillStyle = s.color;
    g.lineWidth = 2;
    g.lineJoin = 'round';
    g.beginPath();
    let pen = false;
    for (const [x, y] of s.points) {
      if (y === null || !isFinite(y)) { pen = false; continue; }
      if (pen) g.lineTo(X(x), Y(y)); else g.moveTo(X(x), Y(y));
      pen = true;
      drawn++;
    }
    g.stroke();
    // dots where asked, and for a point with no neighbour to draw a line to
    const at = (i) => s.points[i] && s.points[i][1] !== null && isFinite(s.points[i][1]);
    s.points.forEach(([x, y], i) => {
      if (!at(i) || !(opts.dots || (!at(i - 1) && !at(i + 1)))) return;
      g.beginPath();
      g.arc(X(x), Y(y), opts.dots ? 3 : 2, 0, 2 * Math.PI);
      g.fill();
    });
  }

  // legend: swatch, name and the last value of each series
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  let lx = left;
  for (const s of opts.series) {
    const last = [...s.points].reverse().find((p) => p[1] !== null);
    const label = s.name + (last && !opts.dots ? '  ' + fy(last[1]) : '');
    g.fillStyle = s.color;
    g.fillRect(lx, 9, 10, 3);
    g.fillStyle = ink;
    g.fillText(label, lx + 14, 11);
    lx += 30 + g.measureText(label).width;
  }
  if (!drawn && opts.empty) {
    g.textAlign = 'center';
    g.fillStyle = ink;
    g.fillText(opts.empty, (left + w - right) / 2, (top + h - bottom) / 2);
  }
  canvas.dataset.points = String(drawn);
}
