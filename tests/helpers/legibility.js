// The legibility checker of tests/helpers/legibility.py (see its docstring), run by
// Playwright's page.evaluate with {overlap, clip, same} in CSS pixels and {mostly}, a share.
// Returns one report per .js-plotly-plot element of the page, in document order.
(opts) => {
  const OVERLAP = opts.overlap, CLIP = opts.clip, SAME = opts.same, MOSTLY = opts.mostly;
  // Plotly's rich text (<br>, <b>, entities) as plain text; DOMParser runs nothing.
  const parser = new DOMParser();
  const plain = (s) => {
    if (s === undefined || s === null) return '';
    const doc = parser.parseFromString(String(s).replace(/<br\s*\/?>/gi, ' '), 'text/html');
    return (doc.body.textContent || '').replace(/\s+/g, ' ').trim();
  };
  const short = (s) => (s.length > 70 ? s.slice(0, 67) + '...' : s);
  const q = (s) => '"' + short(s) + '"';
  const ordinal = (n) => {
    const s = ['th', 'st', 'nd', 'rd'], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  };
  const shown = (el) => {
    if (!el || !el.isConnected) return false;
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden') return false;
      if (e.getAttribute && e.getAttribute('opacity') === '0') return false;
      if (parseFloat(cs.opacity) === 0) return false;
    }
    return true;
  };

  // ---- geometry -----------------------------------------------------------------------
  // A text's box in its own frame (so rotation is kept), mapped to the screen. The font box
  // is trimmed to about the ink: from the cap height above the first baseline to most of
  // the descent below the last one.
  const quadOf = (el) => {
    let bb;
    try { bb = el.getBBox(); } catch (e) { return null; }
    if (!bb || (bb.width <= 0 && bb.height <= 0)) return null;
    const m = el.getScreenCTM();
    if (!m) return null;
    const fs = parseFloat(getComputedStyle(el).fontSize) || 12;
    let y0 = bb.y, h = bb.height;
    if (h > 0.5 * fs) { y0 += 0.18 * fs; h = Math.max(0.5 * fs, h - 0.24 * fs); }
    const x0 = bb.x, w = bb.width;
    const pt = (x, y) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f];
    return [pt(x0, y0), pt(x0 + w, y0), pt(x0 + w, y0 + h), pt(x0, y0 + h)];
  };
  const rectOfQuad = (qd) => {
    const xs = qd.map((p) => p[0]), ys = qd.map((p) => p[1]);
    return {l: Math.min(...xs), r: Math.max(...xs), t: Math.min(...ys), b: Math.max(...ys)};
  };
  // Overlap depth of two convex quads (separating axes); <= 0 when they do not overlap.
  const depth = (A, B) => {
    let best = Infinity;
    for (const P of [A, B]) {
      for (let i = 0; i < 4; i++) {
        const p = P[i], n = P[(i + 1) % 4];
        let ax = -(n[1] - p[1]), ay = n[0] - p[0];
        const len = Math.hypot(ax, ay);
        if (len < 1e-9) continue;
        ax /= len; ay /= len;
        const pa = A.map((v) => v[0] * ax + v[1] * ay);
        const pb = B.map((v) => v[0] * ax + v[1] * ay);
        const o = Math.min(Math.max(...pa), Math.max(...pb)) - Math.max(Math.min(...pa), Math.min(...pb));
        if (o < best) best = o;
        if (best <= 0) return best;
      }
    }
    return best;
  };
  const outside = (r, c) => ({
    left: c.l - r.l, right: r.r - c.r, top: c.t - r.t, bottom: r.b - c.b,
  });
  const intersect = (a, b) => ({
    l: Math.max(a.l, b.l), r: Math.min(a.r, b.r), t: Math.max(a.t, b.t), b: Math.min(a.b, b.b),
  });
  const boxOf = (el) => {
    const r = el.getBoundingClientRect();
    return {l: r.left, r: r.right, t: r.top, b: r.bottom};
  };

  // The area a chart's drawing can show: its svg, its element and what its ancestors clip
  // (not what a scrolling ancestor shows once scrolled: the page's own height).
  const clipArea = (gd) => {
    const svg = gd.querySelector('svg.main-svg');
    let c = svg ? boxOf(svg) : boxOf(gd);
    c = intersect(c, boxOf(gd));
    let scrollsX = false, scrollsY = false;
    for (let e = gd.parentElement; e && e !== document.documentElement; e = e.parentElement) {
      const cs = getComputedStyle(e);
      const r = boxOf(e);
      if (!scrollsX && cs.overflowX !== 'visible') {
        c = {...c, l: Math.max(c.l, r.l), r: Math.min(c.r, r.r)};
      }
      if (!scrollsY && (cs.overflowY === 'hidden' || cs.overflowY === 'clip')) {
        c = {...c, t: Math.max(c.t, r.t), b: Math.min(c.b, r.b)};
      }
      scrollsX = scrollsX || cs.overflowX === 'auto' || cs.overflowX === 'scroll';
      scrollsY = scrollsY || cs.overflowY === 'auto' || cs.overflowY === 'scroll';
    }
    return c;
  };

  // The screen rectangle an element is clipped to by clip paths up to the chart (null:
  // none). A clip path's rectangle is in the user space of the element that uses it.
  const clipOf = (el, gd) => {
    let c = null;
    for (let e = el; e && e !== gd && e.nodeType === 1; e = e.parentElement) {
      const cp = e.getAttribute('clip-path');
      const m = cp && /url\(["']?#([^"')]+)["']?\)/.exec(cp);
      const node = m && document.getElementById(m[1]);
      const r = node && node.querySelector('rect');
      const ctm = r && e.getScreenCTM();
      if (!ctm) continue;
      const x = parseFloat(r.getAttribute('x')) || 0, y = parseFloat(r.getAttribute('y')) || 0;
      const w = parseFloat(r.getAttribute('width')) || 0, h = parseFloat(r.getAttribute('height')) || 0;
      const pts = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
        .map(([a, b]) => [ctm.a * a + ctm.c * b + ctm.e, ctm.b * a + ctm.d * b + ctm.f]);
      const rr = rectOfQuad(pts);
      c = c ? intersect(c, rr) : rr;
    }
    return c;
  };

  // ---- the chart's name ---------------------------------------------------------------
  const describe = (gd, index) => {
    // The figure's own title (Plotly's full layout holds an editor's placeholder when
    // there is none).
    const t = gd.layout && gd.layout.title;
    const title = plain(typeof t === 'string' ? t : t && t.text);
    let key = null, tab = null;
    for (let e = gd; e && e.nodeType === 1; e = e.parentElement) {
      if (!key && e.classList) {
        const k = [...e.classList].find((c) => c.startsWith('st-key-'));
        if (k) key = k.slice(7);
      }
      if (!tab && e.getAttribute && e.getAttribute('role') === 'tabpanel') {
        const id = e.getAttribute('aria-labelledby');
        const t = id ? document.getElementById(id) : null;
        if (t) tab = plain(t.textContent);
      }
    }
    const where = [`${ordinal(index)} chart on the page`];
    if (key) where.push(`key ${key}`);
    if (tab) where.push(`tab ${q(tab)}`);
    const name = (title ? `chart ${q(title)}` : 'untitled chart') + ` (${where.join(', ')})`;
    return {title, key, tab, name};
  };

  // ---- the labels ---------------------------------------------------------------------
  const axisName = (id) => {
    if (/cb/.test(id)) return 'the colour bar';
    const m = /^([xy])(\d*)$/.exec(id);
    return m ? `the ${m[1]}${m[2]} axis` : id;
  };
  // What a text shows: its source (lines joined by a space) when it shows anything.
  const labelText = (el) => (el.textContent.trim()
    ? plain(el.getAttribute('data-unformatted') || el.textContent) : '');
  const collectLabels = (gd) => {
    const out = [];
    const add = (el, kind, extra) => {
      if (!shown(el)) return;
      const text = labelText(el);
      if (!text) return;
      const quad = quadOf(el);
      if (!quad) return;
      out.push({el, kind, text, quad, rect: rectOfQuad(quad), ...extra});
    };
    gd.querySelectorAll('g').forEach((g) => {
      const cls = g.getAttribute('class') || '';
      const m = /^([xy]\d*|[xy]cb\w*)tick$/.exec(cls);
      if (!m) return;
      for (const t of g.children) if (t.tagName === 'text') add(t, 'tick', {axis: m[1]});
    });
    gd.querySelectorAll('text').forEach((t) => {
      const cls = t.getAttribute('class') || '';
      let m;
      if (cls === 'gtitle') add(t, 'title', {});
      else if ((m = /^([xy]\d*|[xy]cb\w*)title$/.exec(cls))) add(t, 'axis title', {axis: m[1]});
      else if (cls.split(' ').includes('annotation-text')) add(t, 'annotation', {});
      else if (t.closest('g.trace') && !t.closest('g.hm')) add(t, 'data label', {});
      else if (cls === 'legendtext' || cls === 'legendtitletext') {
        add(t, cls === 'legendtext' ? 'legend' : 'legend title', {});
      }
    });
    return out;
  };
  // The order in which two overlapping labels are named.
  const RANK = {annotation: 0, title: 1, 'legend title': 2, legend: 3, 'axis title': 4,
                'data label': 5, tick: 6};
  const what = (lab) => {
    switch (lab.kind) {
      case 'tick': return `tick label ${q(lab.text)} of ${axisName(lab.axis)}`;
      case 'axis title': return `the title ${q(lab.text)} of ${axisName(lab.axis)}`;
      case 'annotation': return `annotation ${q(lab.text)}`;
      case 'legend': return `legend entry ${q(lab.text)}`;
      case 'legend title': return `legend title ${q(lab.text)}`;
      case 'data label': return `data label ${q(lab.text)}`;
      default: return `the chart title ${q(lab.text)}`;
    }
  };

  // ---- the traces ---------------------------------------------------------------------
  const nums = (d) => (d.match(/-?\d*\.?\d+(?:e[-+]?\d+)?/gi) || []).map(Number);
  const letters = (d) => d.replace(/[^A-DF-Za-df-z]/g, '');
  const sameNums = (a, b) => a.length === b.length
    && a.every((v, i) => Math.abs(v - b[i]) <= SAME);
  const dashOf = (el) => {
    const s = el.style.strokeDasharray || el.getAttribute('stroke-dasharray') || '';
    return s === 'none' ? '' : s.replace(/\s+/g, '');
  };
  const widthOf = (el) => {
    const w = el.style.strokeWidth || el.getAttribute('stroke-width') || '0';
    return parseFloat(w) || 0;
  };
  const opacityOf = (el) => {
    let o = 1;
    for (let e = el; e && e.tagName !== 'svg'; e = e.parentElement) {
      const v = e.style && e.style.opacity !== '' ? parseFloat(e.style.opacity) : NaN;
      if (!isNaN(v)) o *= v;
    }
    const fo = el.style && el.style.fillOpacity !== '' ? parseFloat(el.style.fillOpacity) : NaN;
    return isNaN(fo) ? o : o * fo;
  };
  const traceOf = (g) => {
    const d = g.__data__;
    const first = Array.isArray(d) ? d[0] : d;
    return first && first.trace ? first.trace : null;
  };
  const plotArea = (gd, tr) => {
    const fl = gd._fullLayout;
    const xa = fl[(tr.xaxis || 'x').replace('x', 'xaxis')];
    const ya = fl[(tr.yaxis || 'y').replace('y', 'yaxis')];
    const svg = gd.querySelector('svg.main-svg');
    if (!xa || !ya || !svg) return null;
    const o = boxOf(svg);
    return {l: o.l + xa._offset, r: o.l + xa._offset + xa._length,
            t: o.t + ya._offset, b: o.t + ya._offset + ya._length, xa, ya};
  };
  const meets = (r, a) => r.r >= a.l - 0.5 && r.l <= a.r + 0.5
    && r.b >= a.t - 0.5 && r.t <= a.b + 0.5;
  // A path's polylines in screen pixels (M, L, H, V, Z; null for curves).
  const polylines = (el) => {
    const d = el.getAttribute('d') || '';
    if (/[^MLHVZmlhvz0-9eE.,\s+-]/.test(d) || /[mlhv]/.test(d)) return null;
    const m = el.getScreenCTM();
    if (!m) return null;
    const out = [];
    let cur = null, x = 0, y = 0, x0 = 0, y0 = 0;
    for (const [, cmd, args] of d.matchAll(/([MLHVZ])([^MLHVZ]*)/g)) {
      const n = nums(args);
      if (cmd === 'M') {
        x = x0 = n[0]; y = y0 = n[1]; cur = [[x, y]]; out.push(cur);
        for (let i = 2; i + 1 < n.length; i += 2) { x = n[i]; y = n[i + 1]; cur.push([x, y]); }
      } else if (cmd === 'L') {
        for (let i = 0; i + 1 < n.length; i += 2) { x = n[i]; y = n[i + 1]; cur.push([x, y]); }
      } else if (cmd === 'H') {
        for (const v of n) { x = v; cur.push([x, y]); }
      } else if (cmd === 'V') {
        for (const v of n) { y = v; cur.push([x, y]); }
      } else if (cmd === 'Z' && cur) {
        x = x0; y = y0; cur.push([x, y]);
      }
    }
    return out.map((pl) => pl.map(([a, b]) => [m.a * a + m.c * b + m.e, m.b * a + m.d * b + m.f]));
  };
  const segDist = (p, a, b) => {
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const l2 = dx * dx + dy * dy;
    let t = l2 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2 : 0;
    t = Math.max(0, Math.min(1, t));
    return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
  };
  // Points every 2 px along polylines.
  const samples = (pls) => {
    const out = [];
    for (const pl of pls) {
      if (pl.length === 1) out.push(pl[0]);
      for (let i = 1; i < pl.length; i++) {
        const a = pl[i - 1], b = pl[i];
        const n = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / 2));
        for (let k = 0; k <= n; k++) out.push([a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n]);
      }
    }
    return out;
  };
  const ptsOf = (g) => [...g.querySelectorAll('g.points path.point, g.points g.point > path')]
    .filter((p) => {
      const d = p.getAttribute('d') || '';
      return d && d !== 'M0,0Z' && shown(p);
    });
  const emptyDrawing = (tr) => ({tr, line: null, fill: null, markers: [], bars: [], boxes: [],
                                 texts: 0, images: [], inside: false});
  const drawingOf = (gd, g, tr) => {
    const area = plotArea(gd, tr);
    const dr = emptyDrawing(tr);
    const cls = (g.getAttribute('class') || '').split(' ');
    if (cls.includes('im') || cls.includes('hm')) {
      for (const im of g.querySelectorAll('image')) if (shown(im)) dr.images.push(boxOf(im));
      dr.inside = dr.images.length > 0;
      return dr;
    }
    const line = [...g.querySelectorAll('path.js-line')]
      .find((p) => (p.getAttribute('d') || '').length > 1);
    if (line && shown(line) && widthOf(line) > 0) {
      const d = line.getAttribute('d');
      dr.line = {nums: nums(d), letters: letters(d), dash: dashOf(line), width: widthOf(line),
                 pls: polylines(line)};
      if (area && meets(boxOf(line), area)) dr.inside = true;
    }
    const fill = [...g.querySelectorAll('path.js-fill')]
      .find((p) => (p.getAttribute('d') || '').length > 1);
    if (fill && shown(fill)) {
      dr.fill = fill.getAttribute('d');
      if (area && meets(boxOf(fill), area)) dr.inside = true;
    }
    const isBars = cls.includes('bars');
    for (const p of ptsOf(g)) {
      const r = boxOf(p);
      if (isBars) {
        if (r.r - r.l < 0.5 || r.b - r.t < 0.5) continue;
        dr.bars.push({r, opacity: opacityOf(p)});
      } else {
        const d = p.getAttribute('d');
        const n = nums(d).map(Math.abs);
        dr.markers.push({x: (r.l + r.r) / 2, y: (r.t + r.b) / 2, symbol: letters(d),
                         size: n.length ? Math.max(...n) : 0});
      }
      if (area && meets(r, area)) dr.inside = true;
    }
    for (const p of g.querySelectorAll('path.box, path.mean')) {
      if (!shown(p)) continue;
      dr.boxes.push(p.getAttribute('d') || '');
      if (area && meets(boxOf(p), area)) dr.inside = true;
    }
    for (const t of g.querySelectorAll('text')) {
      if (shown(t) && t.textContent.trim()) {
        dr.texts += 1;
        if (area && meets(boxOf(t), area)) dr.inside = true;
      }
    }
    return dr;
  };
  // WebGL traces draw on a canvas: their markers from the data, in pixels.
  const glDrawingOf = (gd, tr) => {
    const area = plotArea(gd, tr);
    const dr = {...emptyDrawing(tr), gl: true};
    if (!area) return dr;
    const hasMarkers = (tr.mode || '').includes('markers');
    const size = tr.marker && typeof tr.marker.size === 'number' ? tr.marker.size : 6;
    const symbol = tr.marker && typeof tr.marker.symbol === 'string' ? tr.marker.symbol : 'circle';
    const xs = tr.x || [], ys = tr.y || [];
    for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
      const px = area.xa.c2p(area.xa.d2c(xs[i])), py = area.ya.c2p(area.ya.d2c(ys[i]));
      if (!isFinite(px) || !isFinite(py)) continue;
      if (hasMarkers) dr.markers.push({x: area.l + px, y: area.t + py, symbol, size});
      if (px >= -0.5 && px <= area.xa._length + 0.5 && py >= -0.5 && py <= area.ya._length + 0.5) {
        dr.inside = true;
      }
    }
    return dr;
  };
  // Can line L hide line E where they meet? Solid and at least as wide, or the same style.
  const hides = (L, E) => (L.dash === '' && L.width >= E.width - 0.01)
    || (L.dash === E.dash && Math.abs(L.width - E.width) < 0.01);
  // Does the later drawing L hide every part of the earlier drawing E?
  const covers = (L, E) => {
    if (E.texts || E.images.length) return false;
    if (!(E.line || E.fill || E.markers.length || E.bars.length || E.boxes.length)) return false;
    if (E.line) {
      if (!L.line || L.line.letters !== E.line.letters) return false;
      if (!sameNums(L.line.nums, E.line.nums) || !hides(L.line, E.line)) return false;
    }
    if (E.fill && L.fill !== E.fill) return false;
    if (E.markers.length) {
      if (!L.markers.length) return false;
      for (const m of E.markers) {
        const hit = L.markers.some((n) => Math.abs(n.x - m.x) <= SAME
          && Math.abs(n.y - m.y) <= SAME && n.symbol === m.symbol && n.size >= m.size - 0.01);
        if (!hit) return false;
      }
    }
    if (E.bars.length) {
      if (!L.bars.length) return false;
      for (const b of E.bars) {
        const hit = L.bars.some((c) => {
          const inside = c.r.l <= b.r.l + SAME && c.r.r >= b.r.r - SAME
            && c.r.t <= b.r.t + SAME && c.r.b >= b.r.b - SAME;
          const equal = ['l', 'r', 't', 'b'].every((k) => Math.abs(c.r[k] - b.r[k]) <= SAME);
          return equal || (inside && c.opacity >= 0.99);
        });
        if (!hit) return false;
      }
    }
    if (E.boxes.length) {
      if (E.boxes.length !== L.boxes.length) return false;
      for (let i = 0; i < E.boxes.length; i++) {
        if (letters(E.boxes[i]) !== letters(L.boxes[i])) return false;
        if (!sameNums(nums(E.boxes[i]), nums(L.boxes[i]))) return false;
      }
    }
    return true;
  };
  // How much of E's line lies under the later lines that can hide it (a share, and who).
  const lineUnder = (E, later) => {
    if (!E.line || !E.line.pls || E.fill || E.texts || E.bars.length || E.boxes.length) return null;
    const pts = samples(E.line.pls);
    if (pts.length < 10) return null;
    const hiders = later.filter((L) => L.line && L.line.pls && hides(L.line, E.line));
    if (!hiders.length) return null;
    let covered = 0;
    const by = new Map();
    for (const p of pts) {
      for (const L of hiders) {
        const tol = Math.max(0, (L.line.width - E.line.width) / 2) + 0.75;
        let hit = false;
        for (const pl of L.line.pls) {
          for (let i = 1; i < pl.length && !hit; i++) hit = segDist(p, pl[i - 1], pl[i]) <= tol;
          if (hit) break;
        }
        if (hit) { covered += 1; by.set(L, (by.get(L) || 0) + 1); break; }
      }
    }
    // Markers show unless later markers of the same symbol and size sit on them.
    for (const m of E.markers) {
      const hit = later.some((L) => L.markers.some((n) => Math.abs(n.x - m.x) <= SAME
        && Math.abs(n.y - m.y) <= SAME && n.symbol === m.symbol && n.size >= m.size - 0.01));
      if (!hit) return null;
    }
    const names = [...by.entries()].sort((a, b) => b[1] - a[1]).map(([L]) => L);
    return {share: covered / pts.length, by: names};
  };

  const traceProblems = (gd) => {
    const fd = gd._fullData || [];
    const problems = [];
    const drawings = [];  // in drawing order
    const seen = new Set();
    gd.querySelectorAll('g.trace, g.im, g.hm').forEach((g) => {
      const tr = traceOf(g);
      if (!tr || tr.visible !== true || seen.has(tr.index)) return;
      seen.add(tr.index);
      drawings.push(drawingOf(gd, g, tr));
    });
    fd.forEach((tr) => {
      if (tr.visible === true && !seen.has(tr.index) && tr.type === 'scattergl') {
        drawings.push(glDrawingOf(gd, tr));
      }
    });
    // The legend's entries and their texts.
    const entries = new Map();
    gd.querySelectorAll('g.legend g.traces').forEach((g) => {
      const d = g.__data__;
      const first = Array.isArray(d) ? d[0] : d;
      const tr = first && (first.trace || (Array.isArray(first) && first[0] && first[0].trace));
      const text = g.querySelector('text.legendtext');
      if (tr && text && shown(g)) entries.set(tr.index, labelText(text));
    });
    const nameOf = (tr) => entries.get(tr.index) || plain(tr.name) || `trace ${tr.index}`;
    const group = (tr) => (tr.legendgroup ? 'g:' + tr.legendgroup : 'i:' + tr.index);
    const hint = (dr) => (dr.bars.length
      ? ' (draw the bars side by side, or merge the two into one entry that names both)'
      : ' (give one of them a dash style, other markers or a wider line, or merge the two '
        + 'into one entry that names both)');
    const hiddenBy = new Map();
    const cover = {};  // legend name -> share of its line under later lines
    drawings.forEach((E, i) => {
      let reason = null;
      const later = drawings.slice(i + 1).filter((L) => !!L.gl === !!E.gl);
      if (!E.inside) {
        reason = 'it draws nothing inside its axes';
      } else {
        const L = [...later].reverse().find((L) => covers(L, E));
        if (L) {
          reason = `it is drawn exactly under ${q(nameOf(L.tr))}, which is drawn after it`
            + hint(E);
        } else {
          const u = lineUnder(E, later);
          if (u) cover[nameOf(E.tr)] = Math.round(1000 * u.share) / 1000;
          if (u && u.share >= MOSTLY) {
            const who = u.by.slice(0, 3).map((L) => q(nameOf(L.tr))).join(', ');
            reason = `${Math.round(100 * u.share)}% of its line lies under ${who}, drawn after it`
              + hint(E);
          }
        }
      }
      hiddenBy.set(E.tr.index, reason);
    });
    const verdicts = new Map();  // legend group -> {visible, reasons}
    fd.forEach((tr) => {
      if (tr.visible !== true) return;
      const key = group(tr);
      const v = verdicts.get(key) || {visible: false, reasons: []};
      if (hiddenBy.has(tr.index)) {
        const r = hiddenBy.get(tr.index);
        if (r === null) v.visible = true; else v.reasons.push(r);
      } else {
        v.visible = true;  // a trace type the checker does not measure
      }
      verdicts.set(key, v);
    });
    for (const [index, text] of entries) {
      const tr = fd.find((t) => t.index === index);
      if (!tr || tr.visible !== true) continue;
      const v = verdicts.get(group(tr));
      if (v && !v.visible) {
        problems.push(`legend entry ${q(text)} has no visible trace: ${v.reasons[0]}`);
      }
    }
    return {problems, traces: entries.size, drawings, nameOf, cover};
  };

  // ---- one chart ----------------------------------------------------------------------
  const checkChart = (gd, index) => {
    const info = describe(gd, index);
    const box = boxOf(gd);
    const rep = {index, ...info, checked: false, width: box.r - box.l, height: box.b - box.t,
                 labels: 0, traces: 0, cover: {}, problems: []};
    if (!gd._fullLayout || !shown(gd) || rep.width < 1 || rep.height < 1) return rep;
    rep.checked = true;
    const area = clipArea(gd);
    const labels = collectLabels(gd);
    rep.labels = labels.length;
    const say = (s) => rep.problems.push(s);
    const list = (xs) => xs.slice(0, 4).map(q).join(', ')
      + (xs.length > 4 ? ` and ${xs.length - 4} more` : '');
    // Clipped labels, those of one kind (and axis) clipped the same way in one sentence:
    // by the chart's area, or by a clip path inside it (a legend that scrolls, a data label
    // outside its plotting area).
    const plural = {tick: 'tick labels', legend: 'legend entries', 'data label': 'data labels'};
    const clipped = new Map();
    const clip = (lab, by, sides) => {
      const key = (plural[lab.kind] ? lab.kind + '|' + (lab.axis || '') : 'one|' + lab.text)
        + '|' + by;
      const c = clipped.get(key) || {lab, by, texts: [], sides: new Set(), px: 0};
      c.texts.push(lab.text);
      for (const [side, px] of sides) { c.sides.add(side); c.px = Math.max(c.px, px); }
      clipped.set(key, c);
    };
    for (const lab of labels) {
      const sides = Object.entries(outside(lab.rect, area)).filter(([, v]) => v > CLIP);
      if (sides.length) {
        clip(lab, 'chart', sides);
        continue;
      }
      const c = clipOf(lab.el, gd);
      const cut = c ? Object.entries(outside(lab.rect, c)).filter(([, v]) => v > CLIP + 1) : [];
      if (cut.length) clip(lab, lab.el.closest('g.legend') ? 'legend' : 'plot', cut);
    }
    const ORDER = ['left', 'right', 'top', 'bottom'];
    for (const c of clipped.values()) {
      const many = c.texts.length > 1;
      const of = c.lab.kind === 'tick' ? ` of ${axisName(c.lab.axis)}` : '';
      const subject = many ? `${plural[c.lab.kind]} ${list(c.texts)}${of} are` : `${what(c.lab)} is`;
      const where = ORDER.filter((x) => c.sides.has(x)).join(' and ');
      const how = c.by === 'chart' ? `clipped at the ${where} of the chart`
        : `cut off at the ${where} by ${c.by === 'legend'
          ? "the legend's box (the legend scrolls)" : 'the plotting area'}`;
      say(`${subject} ${how} (by ${many ? 'up to ' : ''}${c.px.toFixed(0)} px)`);
    }
    // overlaps (tick labels of one axis among themselves in one sentence)
    const tickPairs = new Map();
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) {
        const a = labels[i], b = labels[j];
        // Tick labels of an x and a y axis meet at the corners by design; those of two x
        // (or two y) axes of neighbouring subplots must not touch.
        if (a.kind === 'tick' && b.kind === 'tick' && a.axis[0] !== b.axis[0]) continue;
        if ((a.kind === 'legend' || a.kind === 'legend title') && (b.kind === 'legend' || b.kind === 'legend title')) {
          if (a.el.closest('g.legend') === b.el.closest('g.legend')) continue;  // laid out by Plotly
        }
        const d = depth(a.quad, b.quad);
        if (d <= OVERLAP) continue;
        if (a.kind === 'tick' && b.kind === 'tick' && a.axis !== b.axis) {
          say(`${what(a)} overlaps ${what(b)} (by ${d.toFixed(0)} px)`);
        } else if (a.kind === 'tick' && b.kind === 'tick') {
          const t = tickPairs.get(a.axis) || [];
          t.push([a.text, b.text, d]);
          tickPairs.set(a.axis, t);
        } else {
          const [x, y] = RANK[b.kind] < RANK[a.kind] ? [b, a] : [a, b];
          say(`${what(x)} overlaps ${what(y)} (by ${d.toFixed(0)} px)`);
        }
      }
    }
    for (const [axis, pairs] of tickPairs) {
      const shownPairs = pairs.slice(0, 3).map(([a, b]) => `${q(a)} and ${q(b)}`).join('; ');
      const more = pairs.length > 3 ? `; ${pairs.length - 3} more pairs` : '';
      const px = Math.max(...pairs.map((p) => p[2]));
      say(`tick labels of ${axisName(axis)} overlap each other (up to ${px.toFixed(0)} px): ${shownPairs}${more}`);
    }
    // truncated legend texts
    for (const lab of labels) {
      if ((lab.kind === 'legend' || lab.kind === 'legend title')
          && /(\u2026|\.\.\.)\s*$/.test(lab.el.textContent || '')) {
        say(`${what(lab)} is truncated with an ellipsis`);
      }
    }
    const tp = traceProblems(gd);
    rep.traces = tp.traces;
    rep.cover = tp.cover;
    tp.problems.forEach(say);
    // texts on the data: an annotation or a title over bars or an image (hard to read, and
    // it hides what is under it), the chart title inside a plotting area
    const quadOfRect = (r) => [[r.l, r.t], [r.r, r.t], [r.r, r.b], [r.l, r.b]];
    const under = [];
    for (const dr of tp.drawings) {
      const name = q(tp.nameOf(dr.tr));
      for (const b of dr.bars) if (b.opacity >= 0.3) under.push({r: b.r, what: `the bars of ${name}`});
      for (const im of dr.images) under.push({r: im, what: 'an image'});
    }
    const svg = gd.querySelector('svg.main-svg');
    const o = svg ? boxOf(svg) : null;
    for (const p of Object.values(gd._fullLayout._plots || {})) {
      if (!o || !p.xaxis || !p.yaxis) continue;
      const r = {l: o.l + p.xaxis._offset, r: o.l + p.xaxis._offset + p.xaxis._length,
                 t: o.t + p.yaxis._offset, b: o.t + p.yaxis._offset + p.yaxis._length};
      under.push({r, what: 'a plotting area', titleOnly: true});
    }
    for (const lab of labels) {
      if (!['annotation', 'title', 'axis title'].includes(lab.kind)) continue;
      const g = lab.el.closest('g.annotation');
      const bg = g && g.querySelector('rect.bg');
      if (bg) {
        const cs = getComputedStyle(bg);
        if (cs.fill !== 'none' && !/rgba\(.*,\s*0\)/.test(cs.fill)
            && parseFloat(cs.fillOpacity || '1') > 0.5) continue;  // it has its own background
      }
      const hits = new Set();
      for (const u of under) {
        if (u.titleOnly && lab.kind !== 'title') continue;
        if (!hits.has(u.what) && depth(lab.quad, quadOfRect(u.r)) > OVERLAP) hits.add(u.what);
      }
      for (const w of hits) say(`${what(lab)} lies on ${w}`);
    }
    return rep;
  };

  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  return plots.map((gd, i) => checkChart(gd, i + 1));
}
