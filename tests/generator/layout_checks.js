// Layout and contrast checks run inside a catalog page by tests/generator/test_layout.py.
// Evaluated as one expression: an arrow function taking {what} and returning plain JSON. Written over
// what any page has (Material's .md-content and .md-sidebar, text nodes, code, tables), never over one
// page's classes, so the checks keep holding when a page is redesigned.
({ what }) => {
  const TOL = 1.5; // px: sub-pixel rounding and borders

  // The rectangle of `el`'s content that its ancestors let show: each ancestor that clips (overflow other
  // than visible) cuts the rectangle to its own box. html and body are left out: what they clip is what
  // the page-wide scrollWidth check catches.
  function clipOf(el) {
    const clip = { l: -Infinity, t: -Infinity, r: Infinity, b: Infinity };
    for (let p = el; p && p !== document.body && p !== document.documentElement; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX === "visible" && s.overflowY === "visible") continue;
      const box = p.getBoundingClientRect();
      if (s.overflowX !== "visible") { clip.l = Math.max(clip.l, box.left); clip.r = Math.min(clip.r, box.right); }
      if (s.overflowY !== "visible") { clip.t = Math.max(clip.t, box.top); clip.b = Math.min(clip.b, box.bottom); }
    }
    return clip;
  }
  function cut(r, clip) {
    const out = { l: Math.max(r.left, clip.l), t: Math.max(r.top, clip.t), r: Math.min(r.right, clip.r), b: Math.min(r.bottom, clip.b) };
    return out.r - out.l > 0.5 && out.b - out.t > 0.5 ? out : null;
  }
  function shown(el) {
    return el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  }
  function describe(el, text) {
    const cls = typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "";
    return `${el.tagName.toLowerCase()}${cls} "${(text || el.textContent || "").trim().slice(0, 50)}"`;
  }
  // Every visible piece of text under `root`: [{node, el, rects (clipped, one per line fragment)}].
  function texts(root) {
    const out = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      if (!node.data.trim() || !el || el.closest("script, style, noscript, template") || !shown(el)) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const clip = clipOf(el);
      const rects = Array.from(range.getClientRects(), (r) => cut(r, clip)).filter(Boolean);
      if (rects.length) out.push({ node, el, rects });
    }
    return out;
  }
  const overlaps = (a, b) => Math.min(a.r, b.r) - Math.max(a.l, b.l) > TOL && Math.min(a.b, b.b) - Math.max(a.t, b.t) > TOL;

  // Text under a sidebar (the sticky table of contents or the navigation): sidebars stay put while the page
  // scrolls, so any text whose columns fall inside a shown sidebar's columns is covered at some scroll.
  function underSidebars(pieces) {
    const bars = Array.from(document.querySelectorAll(".md-sidebar"))
      .filter((s) => shown(s))
      .map((s) => ({ s, r: s.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 0 && r.right > 0 && r.left < innerWidth);
    const found = [];
    for (const { el, rects, node } of pieces) {
      for (const { s, r } of bars) {
        if (s.contains(el)) continue;
        if (rects.some((t) => Math.min(t.r, r.right) - Math.max(t.l, r.left) > TOL)) {
          found.push(`${describe(el, node.data)} under ${describe(s, " ")} at x ${Math.round(r.left)}–${Math.round(r.right)}`);
        }
      }
    }
    return found;
  }
  // Text drawn over other text, an image or a form control (a sweep over rectangles sorted by top).
  function collisions(pieces) {
    const items = [];
    pieces.forEach(({ el, rects, node }, i) => rects.forEach((r) => items.push({ r, el, id: i, what: describe(el, node.data) })));
    for (const el of document.querySelectorAll(".md-content img, .md-content svg, .md-content input, .md-content select, .md-content textarea, .md-content button")) {
      if (!shown(el)) continue;
      const r = cut(el.getBoundingClientRect(), clipOf(el.parentElement || el));
      if (r) items.push({ r, el, id: `box${items.length}`, what: describe(el, el.getAttribute("alt") || " "), box: true });
    }
    items.sort((a, b) => a.r.t - b.r.t);
    const found = [];
    for (let i = 0; i < items.length && found.length < 20; i++) {
      for (let j = i + 1; j < items.length && items[j].r.t < items[i].r.b; j++) {
        const a = items[i], b = items[j];
        if (a.id === b.id || (a.box && b.box)) continue;
        if (a.el.contains(b.el) && a.box) continue; // a button's own label
        if (b.el.contains(a.el) && b.box) continue;
        if (overlaps(a.r, b.r)) found.push(`${a.what} overlaps ${b.what}`);
      }
    }
    return found;
  }
  // Long unbroken strings (digests, key ids) wrap inside their cell or paragraph instead of running out.
  function digests() {
    const found = [];
    for (const code of document.querySelectorAll(".md-content code")) {
      const text = code.textContent.trim();
      if (text.length < 32 || /\s/.test(text) || !shown(code)) continue;
      const box = code.closest("td, th, dd, dt, li, p, summary, figcaption, div").getBoundingClientRect();
      // each wrapped fragment carries the code's own padding past the line's edge (box-decoration-break)
      const pad = parseFloat(getComputedStyle(code).paddingRight) + TOL;
      for (const r of code.getClientRects()) {
        if (r.right > box.right + pad || r.left < box.left - pad || r.width > innerWidth) {
          found.push(`${describe(code)}: ${Math.round(r.left)}–${Math.round(r.right)} outside ${Math.round(box.left)}–${Math.round(box.right)}`);
          break;
        }
      }
    }
    return found;
  }
  // A word set one letter per line: a piece of text of six or more characters on so many lines that each
  // holds under three characters.
  function letterColumns(pieces) {
    const found = [];
    for (const { el, rects, node } of pieces) {
      const chars = node.data.replace(/\s+/g, "").length;
      const lines = new Set(rects.map((r) => Math.round(r.t))).size;
      if (chars >= 6 && lines >= 3 && chars / lines < 3) found.push(`${describe(el, node.data)}: ${chars} characters on ${lines} lines`);
    }
    return found;
  }

  // WCAG 2 contrast of each visible piece of text against the background it is drawn on: the element's
  // colour (alpha times every ancestor's opacity) over its ancestors' background colours, composited.
  function rgba(value) {
    const m = /rgba?\(([^)]+)\)/.exec(value);
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  function background(el) {
    const layers = [];
    for (let p = el; p; p = p.parentElement) {
      const c = rgba(getComputedStyle(p).backgroundColor);
      if (c && c[3] > 0) layers.push(c);
      if (c && c[3] >= 1) break;
    }
    let base = [255, 255, 255, 1];
    for (const layer of layers.reverse()) base = over(layer, base);
    return base;
  }
  function luminance(c) {
    const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function contrast(pieces) {
    const found = [];
    const seen = new Set();
    for (const { el, node } of pieces) {
      // a disabled control is exempt (WCAG 1.4.3: inactive user interface components)
      if (seen.has(el) || el.closest(":disabled")) continue;
      seen.add(el);
      const s = getComputedStyle(el);
      const fg = rgba(s.color);
      if (!fg) { found.push(`${describe(el, node.data)}: colour ${s.color} not understood`); continue; }
      let alpha = fg[3];
      for (let p = el; p; p = p.parentElement) alpha *= Number(getComputedStyle(p).opacity);
      const bg = background(el);
      const ink = over([fg[0], fg[1], fg[2], alpha], bg);
      const [hi, lo] = [luminance(ink), luminance(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(s.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        found.push(`${describe(el, node.data)}: ${ratio.toFixed(2)}:1 (${s.color} on rgb(${bg.slice(0, 3).map(Math.round)}))`);
      }
    }
    return found;
  }

  const content = document.querySelector(".md-content") || document.body;
  if (what === "contrast") return contrast(texts(document.body)).slice(0, 30);
  const pieces = texts(content);
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth,
    underSidebars: underSidebars(pieces).slice(0, 20),
    collisions: collisions(pieces),
    digests: digests().slice(0, 20),
    letterColumns: letterColumns(pieces).slice(0, 20),
  };
}
