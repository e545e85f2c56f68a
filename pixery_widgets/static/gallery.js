// The gallery: a search bar, a grid of thumbnails that loads more as it scrolls,
// a details view and a side-by-side compare. State lives in Python (the traits
// `records`, `selected`, `focus`, `detail`, `comparing`, `menus`, `message`...);
// this file draws it and sends every gesture as a message {command, ...fields}
// (gallery.command() in Python takes the same). Keys are sent as
// {command: "key", key, columns}; Python decides what they do.
//
// Each part is built by one function from a context `ctx` ({get, send, uid, el})
// and returns its element and a `draw()` that redraws it from the model.

// Keys Python acts on (see session/gallery_keys.py); others stay the notebook's.
const KEYS = new Set([
  "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End",
  "Enter", "Escape", "s", "S", "Delete", "Backspace", " ", "u",
]);
const CTRL_KEYS = new Set(["z", "a"]);

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const button = (label, onclick, extra = {}) =>
  h("button", { type: "button", className: "pixery-gallery-button", onclick, ...extra }, label);

function picture(src, problem, alt = "") {
  return src
    ? h("img", { src, alt, loading: "lazy", decoding: "async" })
    : h("span", { className: "pixery-gallery-problem", text: problem || "…" });
}

function options(select, values, anyText, current) {
  const list = [h("option", { value: "", text: anyText })];
  for (const [value, text] of values) list.push(h("option", { value, text }));
  if (current && !values.some(([v]) => v === current)) {
    list.push(h("option", { value: current, text: current }));
  }
  select.replaceChildren(...list);
  select.value = current || "";
}

function copyText(ctx, text, btn) {
  const done = () => {
    btn.textContent = "Copied";
    setTimeout(() => { btn.textContent = "Copy"; }, 1500);
  };
  const fallback = () => { // no clipboard API (an insecure context): the old way
    const area = h("textarea", { className: "pixery-gallery-offscreen" });
    area.value = text;
    ctx.el.append(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else fallback();
}

function tagField(ctx, ids) {
  const input = h("input", {
    type: "text", className: "pixery-gallery-tag-input", placeholder: "add a tag",
    list: `pixery-tags-${ctx.uid}`, "aria-label": "Add a tag",
  });
  const add = () => { if (input.value.trim()) ctx.send("tag", { tag: input.value, ids: ids() }); };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { add(); e.preventDefault(); } });
  return [input, button("Add tag", add)];
}

function exportField(ctx, ids) {
  const input = h("input", {
    type: "text", className: "pixery-gallery-folder", placeholder: "folder, e.g. exports/picks",
    "aria-label": "Export to folder",
  });
  return [input, button("Export", () => ctx.send("export", { folder: input.value, ids: ids() }))];
}

// -- the search bar ----------------------------------------------------------------------

function filterControls() {
  const pick = (name, label) =>
    h("select", { className: "pixery-gallery-filter", "aria-label": label, "data-filter": name });
  const date = (name, label) => h("input",
    { type: "date", className: "pixery-gallery-filter", "aria-label": label, "data-filter": name });
  const check = (name) => h("input", { type: "checkbox", "data-filter": name });
  return {
    model: pick("model", "Model"), lora: pick("lora", "LoRA"), tag: pick("tag", "Tag"),
    batch: h("input", { type: "text", className: "pixery-gallery-filter pixery-gallery-batch",
      placeholder: "batch id", "aria-label": "Batch", "data-filter": "batch" }),
    since: date("since", "From"), until: date("until", "To"),
    starred: check("starred"), trashed: check("trashed"),
  };
}

function toolbar(ctx) {
  const { get, send } = ctx;
  const search = h("input", { type: "search", className: "pixery-gallery-search",
    placeholder: "Search the prompts…", "aria-label": "Search the prompts" });
  const f = filterControls();
  const label = (box, text) => h("label", { className: "pixery-gallery-check-label" }, box, text);
  const count = h("span", { className: "pixery-gallery-count", role: "status" });
  const emptyTrash = button("Empty trash", () => {
    if (window.confirm("Delete the images in the trash for good?")) send("empty_trash");
  });
  const dropMissing = button("Drop missing files from the index", () => send("forget_missing"));
  const datalist = h("datalist", { id: `pixery-tags-${ctx.uid}` });
  const el = h("div", { className: "pixery-gallery-toolbar" }, search, f.model, f.lora, f.tag,
    f.batch, h("span", { className: "pixery-gallery-dates" }, f.since, "–", f.until),
    label(f.starred, "★ starred"), label(f.trashed, "trash"), count, emptyTrash, dropMissing, datalist);

  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => send("search", { query: search.value }), 250);
  });
  const filtersNow = () => ({
    model: f.model.value || null, lora: f.lora.value || null, tag: f.tag.value || null,
    batch: f.batch.value.trim() || null, since: f.since.value || null,
    until: f.until.value || null, starred: f.starred.checked ? true : null,
    trashed: f.trashed.checked,
  });
  for (const control of Object.values(f)) {
    control.addEventListener("change", () => send("filter", { filters: filtersNow() }));
  }

  function draw() {
    const menus = get("menus") || {};
    const filters = get("filters") || {};
    const records = get("records") || [];
    if (document.activeElement !== search) search.value = get("query") || "";
    options(f.model, (menus.models || []).map((m) => [m, m]), "any model", filters.model);
    options(f.lora, (menus.loras || []).map((m) => [m, m]), "any LoRA", filters.lora);
    const tags = menus.tags || [];
    options(f.tag, tags.map(([t, n]) => [t, `${t} (${n})`]), "any tag", (filters.tag || [])[0]);
    if (document.activeElement !== f.batch) f.batch.value = filters.batch || "";
    f.since.value = filters.since || "";
    f.until.value = filters.until || "";
    f.starred.checked = filters.starred === true;
    f.trashed.checked = Boolean(filters.trashed);
    const total = get("total");
    count.textContent = `${total.toLocaleString()} image${total === 1 ? "" : "s"}` +
      (records.length < total ? ` · ${records.length.toLocaleString()} loaded` : "");
    emptyTrash.hidden = !filters.trashed || total === 0;
    dropMissing.hidden = !records.some((r) => r.problem === "file missing");
    datalist.replaceChildren(...tags.map(([t]) => h("option", { value: t })));
  }
  return { el, draw };
}

// -- the message line and the selection bar ------------------------------------------------

function messageLine(ctx) {
  const el = h("div", { className: "pixery-gallery-message", role: "status", "aria-live": "polite" });
  function draw() {
    const text = ctx.get("message");
    const busy = ctx.get("busy");
    el.dataset.kind = ctx.get("message_kind");
    el.replaceChildren(...[
      busy ? h("span", { className: "pixery-gallery-busy", text: busy }) : null,
      text ? h("span", { text }) : null,
      ctx.get("can_undo") ? button("Undo", () => ctx.send("undo")) : null,
    ].filter(Boolean));
    el.hidden = !text && !busy;
  }
  return { el, draw };
}

function selectionBar(ctx) {
  const { get, send } = ctx;
  const ids = () => get("selected") || [];
  const words = h("span", { className: "pixery-gallery-selected" });
  const trash = button("Trash", () => send("trash", { ids: ids() }));
  const restore = button("Restore", () => send("restore", { ids: ids() }));
  const compare = button("Compare", () => send("compare", { ids: ids() }),
    { title: "2 to 4 images side by side" });
  const el = h("div", { className: "pixery-gallery-selection" }, words,
    button("★ Star", () => send("star", { ids: ids() })),
    button("☆ Unstar", () => send("unstar", { ids: ids() })),
    tagField(ctx, ids), trash, restore, compare,
    button("Vary seed", () => send("vary", { ids: ids() })), exportField(ctx, ids),
    button("Clear selection", () => send("select", { how: "clear" })));
  function draw() {
    const n = ids().length;
    el.hidden = n === 0 || get("mode") !== "gallery";
    words.textContent = `${n} selected`;
    const inTrash = Boolean((get("filters") || {}).trashed);
    trash.hidden = inTrash;
    restore.hidden = !inTrash;
    compare.disabled = n < 2 || n > 4;
  }
  return { el, draw };
}

// -- the grid --------------------------------------------------------------------------------

function gridCell(ctx, id, scroller) {
  const thumb = h("div", { className: "pixery-gallery-thumb" });
  const star = h("span", { className: "pixery-gallery-star", "aria-hidden": "true", text: "★" });
  const box = h("input", { type: "checkbox", className: "pixery-gallery-pick", "aria-label": "Select" });
  const words = h("div", { className: "pixery-gallery-words" });
  const caption = h("div", { className: "pixery-gallery-caption" });
  const cell = h("div", { className: "pixery-gallery-cell", role: "gridcell",
    id: `pixery-${ctx.uid}-${id}` }, thumb, star, box, words, caption);
  cell.addEventListener("click", (e) => {
    if (e.target === box) return;
    if (e.shiftKey) ctx.send("select", { id, how: "range" });
    else if (e.ctrlKey || e.metaKey) ctx.send("select", { id, how: "toggle" });
    else { ctx.send("focus", { id }); ctx.send("open", { id }); }
    scroller.focus({ preventScroll: true });
  });
  box.addEventListener("change", () => ctx.send("select", { id, how: "toggle" }));
  return { cell, thumb, star, box, words, caption, src: null };
}

function fillCell(c, r, chosen, focus) {
  const key = r.thumb || `!${r.problem}`;
  if (c.src !== key) { // a new picture only when it changed: no flicker, no reload
    c.thumb.replaceChildren(picture(r.thumb, r.problem, r.prompt));
    c.src = key;
  }
  const tags = r.tags.length ? `\ntags: ${r.tags.join(", ")}` : "";
  c.cell.title = `${r.prompt}\n${r.caption}${tags}`;
  c.words.textContent = r.prompt;
  c.caption.textContent = r.short;
  c.star.hidden = !r.starred;
  c.box.checked = chosen.has(r.id);
  c.cell.setAttribute("aria-selected", String(chosen.has(r.id)));
  c.cell.classList.toggle("pixery-gallery-focus", r.id === focus);
  c.cell.classList.toggle("pixery-gallery-missing", Boolean(r.problem));
}

// The first and last cells on screen (the cells' offsetTop is measured from the scroller).
function visibleRange(kids, scroller) {
  const top = scroller.scrollTop;
  const bottom = top + scroller.clientHeight;
  let first = -1;
  let last = -1;
  for (let i = 0; i < kids.length && kids[i].offsetTop <= bottom; i += 1) {
    if (kids[i].offsetTop + kids[i].offsetHeight >= top) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return [first, last];
}

function grid(ctx) {
  const { get, send } = ctx;
  const el = h("div", { className: "pixery-gallery-grid", role: "grid", "aria-label": "Archived images" });
  const more = h("div", { className: "pixery-gallery-more" });
  const scroller = h("div", { className: "pixery-gallery-scroller", tabIndex: 0 }, el, more);
  const cells = new Map();
  let asking = false;
  let lastVisible = "";
  let frame = 0;

  const askForMore = () => {
    if (get("has_more") && !asking && !scroller.hidden) {
      asking = true;
      send("more");
    }
  };
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) askForMore();
  }, { root: scroller, rootMargin: "300px" });
  observer.observe(more);

  function reportVisible() {
    frame = 0;
    // A page that does not fill the box leaves the "more" line in view: no new
    // intersection will fire, so ask here.
    if (more.offsetTop < scroller.scrollTop + scroller.clientHeight + 300) askForMore();
    if (scroller.hidden) return;
    const [first, last] = visibleRange(el.children, scroller);
    const key = `${first}:${last}`;
    if (first >= 0 && key !== lastVisible) { // Python keeps thumbnails near these only
      lastVisible = key;
      send("visible", { first, last });
    }
  }
  const onScroll = () => { if (!frame) frame = requestAnimationFrame(reportVisible); };
  scroller.addEventListener("scroll", onScroll);

  function draw() {
    const records = get("records") || [];
    const chosen = new Set(get("selected") || []);
    const focus = get("focus");
    const nodes = records.map((r) => {
      if (!cells.has(r.id)) cells.set(r.id, gridCell(ctx, r.id, scroller));
      fillCell(cells.get(r.id), r, chosen, focus);
      return cells.get(r.id).cell;
    });
    const shown = new Set(records.map((r) => r.id));
    for (const id of [...cells.keys()]) if (!shown.has(id)) cells.delete(id);
    el.replaceChildren(...nodes);
    more.textContent = get("has_more") ? "Loading more…" : "";
    const focused = focus && cells.get(focus);
    if (focused) {
      scroller.setAttribute("aria-activedescendant", focused.cell.id);
      focused.cell.scrollIntoView({ block: "nearest" });
    }
    asking = false;
    lastVisible = ""; // tell Python again what is on screen (its window may have moved)
    onScroll();
  }

  const columns = () => { // the cells on the first row: how far Up and Down move
    const kids = el.children;
    let n = 0;
    while (n < kids.length && kids[n].offsetTop === kids[0].offsetTop) n += 1;
    return Math.max(1, n);
  };
  const dispose = () => { observer.disconnect(); scroller.removeEventListener("scroll", onScroll); };
  return { el: scroller, draw, columns, dispose };
}

// -- the details view ------------------------------------------------------------------------

function small(ctx, item, label) {
  return h("button", { type: "button", className: "pixery-gallery-small", title: item.caption,
    "aria-label": `${label}: ${item.caption}`, onclick: () => ctx.send("open", { id: item.id }) },
  picture(item.thumb, item.problem));
}

function detailActions(ctx, d) {
  const { get, send } = ctx;
  const ids = [d.id];
  const linked = get("linked");
  return h("div", { className: "pixery-detail-actions" },
    button(d.starred ? "★ Starred" : "☆ Star", () => send("star", { ids, starred: !d.starred }),
      { title: "Star (s)", "aria-pressed": String(d.starred),
        className: "pixery-gallery-button pixery-detail-star" }),
    button("Remix", () => send("remix", { id: d.id }), { disabled: !linked || d.missing,
      title: linked ? "Load these settings into the panel" : "Link a panel: px.Gallery(panel=panel)" }),
    button("Vary seed", () => send("vary", { ids }),
      { disabled: d.missing, title: "The same settings with a new seed" }),
    button("Use as reference", () => send("reference", { id: d.id }), { disabled: !linked || d.missing }),
    d.trashed ? button("Restore", () => send("restore", { ids }))
      : button("Trash", () => send("trash", { ids }), { title: "Trash (Delete)" }),
    d.missing ? button("Drop missing files from the index", () => send("forget_missing")) : null);
}

function detailInfo(ctx, d) {
  const ids = () => [d.id];
  const section = (title, ...body) =>
    h("div", { className: "pixery-detail-section" }, h("h4", { text: title }), ...body);
  const chips = h("div", { className: "pixery-detail-tags" },
    d.tags.map((t) => h("span", { className: "pixery-gallery-chip" }, t,
      h("button", { type: "button", className: "pixery-gallery-chip-x", text: "×",
        "aria-label": `Remove tag ${t}`, onclick: () => ctx.send("untag", { tag: t, ids: ids() }) }))),
    tagField(ctx, ids));
  const rows = h("table", { className: "pixery-detail-params" }, h("tbody", {},
    d.rows.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: v })))));
  const copy = button("Copy", () => copyText(ctx, d.a1111, copy), { title: "Copy the A1111 text" });
  const strip = (items) => h("div", { className: "pixery-detail-strip" }, items);
  const inGallery = ctx.get("mode") === "gallery";
  return h("div", { className: "pixery-detail-info" }, detailActions(ctx, d), chips, rows,
    section("A1111 text (ComfyUI, Civitai and A1111 read it)",
      h("pre", { className: "pixery-detail-a1111", text: d.a1111 }), copy),
    section("File", h("code", { className: "pixery-detail-path", text: d.path })),
    d.references.length ? section("Reference images",
      strip(d.references.map((src) => h("img", { src, alt: "reference image" })))) : null,
    d.parent ? section("Made from", small(ctx, d.parent, "Open the parent")) : null,
    d.children.length ? section("Made from this", strip(d.children.map((c) => small(ctx, c, "Open")))) : null,
    d.batch && inGallery ? button("Show its batch", () => ctx.send("filter", { batch: d.batch })) : null,
    section("Export", ...exportField(ctx, ids)));
}

function detailView(ctx, d) {
  const { send } = ctx;
  const paging = ctx.get("mode") === "gallery";
  const head = h("div", { className: "pixery-detail-head" },
    paging ? button("‹", () => send("key", { key: "ArrowLeft" }),
      { title: "Previous (←)", "aria-label": "Previous image" }) : null,
    paging ? button("›", () => send("key", { key: "ArrowRight" }),
      { title: "Next (→)", "aria-label": "Next image" }) : null,
    h("span", { className: "pixery-detail-caption", text: d.caption }),
    button("× Close", () => send("close"), { title: "Close (Esc)" }));
  const image = h("div", { className: "pixery-detail-image" }, d.image
    ? h("img", { src: d.image, alt: d.prompt })
    : h("div", { className: "pixery-gallery-problem pixery-detail-problem", role: "alert",
      text: d.problem }));
  return h("div", { className: "pixery-detail", role: "dialog", "aria-label": `Image ${d.id}` },
    head, h("div", { className: "pixery-detail-body" }, image, detailInfo(ctx, d)));
}

function compareView(ctx, c) {
  const n = c.items.length;
  const head = h("div", { className: "pixery-detail-head" },
    h("span", { className: "pixery-detail-caption",
      text: `Comparing ${n} images: what differs comes first, marked` }),
    ctx.get("mode") === "gallery" ? button("× Close", () => ctx.send("close_compare")) : null);
  const images = h("div", { className: "pixery-compare-images", style: `--pixery-columns:${n}` },
    c.items.map((item) => h("button", { type: "button", className: "pixery-compare-item",
      title: "Open its details", onclick: () => ctx.send("open", { id: item.id }) },
    picture(item.image, item.problem, item.caption),
    h("span", { className: "pixery-gallery-caption", text: item.caption }))));
  const table = h("table", { className: "pixery-compare-params" }, h("tbody", {},
    c.rows.map((row) => h("tr", { className: row.differs ? "pixery-compare-differs" : "" },
      h("th", { text: row.label }), row.values.map((v) => h("td", { text: v }))))));
  return h("div", { className: "pixery-compare" }, head, images, table);
}

// -- putting it together ---------------------------------------------------------------------

function overlay(ctx, parts) {
  const el = h("div", { className: "pixery-gallery-overlay", tabIndex: -1 });
  let shownId = null;
  let scrollTop = 0;
  function draw() {
    const d = ctx.get("detail");
    const c = ctx.get("comparing");
    const mode = ctx.get("mode");
    ctx.el.dataset.mode = mode; // "gallery", "details" (the panel's) or "compare"
    const active = document.activeElement;
    const hadFocus = Boolean(active) && ctx.el.contains(active);
    const typing = hadFocus && active.matches("input, textarea, select");
    const view = d ? detailView(ctx, d) : c ? compareView(ctx, c) : null;
    const scroller = parts.grid.el;
    const wasShown = !scroller.hidden;
    if (wasShown) scrollTop = scroller.scrollTop;
    el.replaceChildren(...(view ? [view] : []));
    el.hidden = !view;
    scroller.hidden = mode !== "gallery" || Boolean(view);
    parts.toolbar.el.hidden = mode !== "gallery";
    ctx.el.classList.toggle("pixery-gallery-closed", mode === "details" && !d);
    if (!scroller.hidden && !wasShown) scroller.scrollTop = scrollTop;
    const id = d ? d.id : c ? "compare" : null;
    if (hadFocus && !typing) { // keys keep working where the user is looking
      if (id) el.focus({ preventScroll: true });
      else if (shownId) scroller.focus({ preventScroll: true });
    }
    shownId = id;
  }
  return { el, draw };
}

function keyboard(ctx, parts) {
  return (e) => {
    const target = e.target;
    if (target.matches && target.matches("input, textarea, select")) {
      if (e.key === "Escape") target.blur();
      return; // typing stays typing
    }
    if (target.tagName === "BUTTON" && (e.key === "Enter" || e.key === " ")) return;
    const ctrl = e.ctrlKey || e.metaKey;
    if (e.altKey || (ctrl ? !CTRL_KEYS.has(e.key.toLowerCase()) : !KEYS.has(e.key))) return;
    e.preventDefault();
    e.stopPropagation();
    ctx.send("key", { key: e.key, columns: parts.grid.columns(), ctrl, shift: e.shiftKey });
  };
}

function render({ model, el }) {
  el.classList.add("pixery", "pixery-gallery");
  el.dataset.lmSuppressShortcuts = "true"; // JupyterLab leaves our keys alone
  const ctx = {
    el,
    uid: Math.random().toString(36).slice(2, 10),
    get: (name) => model.get(name),
    send: (command, fields = {}) => model.send({ command, ...fields }),
  };
  const parts = {
    toolbar: toolbar(ctx), message: messageLine(ctx), selection: selectionBar(ctx), grid: grid(ctx),
  };
  parts.overlay = overlay(ctx, parts);
  el.append(...Object.values(parts).map((p) => p.el));
  const onKey = keyboard(ctx, parts);
  el.addEventListener("keydown", onKey);

  const { toolbar: t, message: m, selection: s, grid: g, overlay: o } = parts;
  const draws = {
    records: [g, t], selected: [g, s], focus: [g], total: [t], has_more: [g], menus: [t],
    filters: [t, s], query: [t], message: [m], message_kind: [m], busy: [m], can_undo: [m],
    detail: [o], comparing: [o], linked: [o], mode: [o, s],
  };
  const handlers = Object.entries(draws).map(([name, drawn]) => {
    const fn = () => drawn.forEach((part) => part.draw());
    model.on(`change:${name}`, fn);
    return [`change:${name}`, fn];
  });
  for (const part of [t, m, s, g, o]) part.draw();

  return () => {
    for (const [event, fn] of handlers) model.off(event, fn);
    g.dispose();
    el.removeEventListener("keydown", onKey);
  };
}

export default { render };
