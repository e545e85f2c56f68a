// The gallery: a search bar, a grid of thumbnails that loads more as it scrolls,
// a details view and a side-by-side compare. State lives in Python (the traits
// `records`, `selected`, `focus`, `detail`, `comparing`, `menus`, `message`...);
// this file draws it and sends every gesture as a message {command, ...fields}
// (gallery.command() in Python takes the same). Keys are sent as
// {command: "key", key, columns}; Python decides what they do.

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

function render({ model, el }) {
  const uid = Math.random().toString(36).slice(2, 10);
  el.classList.add("pixery", "pixery-gallery");
  el.dataset.lmSuppressShortcuts = "true"; // JupyterLab leaves our keys alone
  const send = (command, fields = {}) => model.send({ command, ...fields });
  const get = (name) => model.get(name);

  // -- the search bar ------------------------------------------------------------------
  const search = h("input", {
    type: "search", className: "pixery-gallery-search", placeholder: "Search the prompts…",
    "aria-label": "Search the prompts",
  });
  const pick = (name, label) =>
    h("select", { className: "pixery-gallery-filter", "aria-label": label, "data-filter": name });
  const model_ = pick("model", "Model");
  const lora = pick("lora", "LoRA");
  const tag = pick("tag", "Tag");
  const batch = h("input", {
    type: "text", className: "pixery-gallery-filter pixery-gallery-batch",
    placeholder: "batch id", "aria-label": "Batch", "data-filter": "batch",
  });
  const since = h("input", { type: "date", className: "pixery-gallery-filter", "aria-label": "From", "data-filter": "since" });
  const until = h("input", { type: "date", className: "pixery-gallery-filter", "aria-label": "To", "data-filter": "until" });
  const check = (name, text) => {
    const box = h("input", { type: "checkbox", "data-filter": name });
    return [box, h("label", { className: "pixery-gallery-check-label" }, box, text)];
  };
  const [starred, starredLabel] = check("starred", "★ starred");
  const [trashed, trashedLabel] = check("trashed", "trash");
  const count = h("span", { className: "pixery-gallery-count", role: "status" });
  const emptyTrash = button("Empty trash", () => {
    if (window.confirm("Delete the images in the trash for good?")) send("empty_trash");
  });
  const dropMissing = button("Drop missing files from the index", () => send("forget_missing"));
  const toolbar = h("div", { className: "pixery-gallery-toolbar" }, search, model_, lora, tag,
    batch, h("span", { className: "pixery-gallery-dates" }, since, "–", until), starredLabel,
    trashedLabel, count, emptyTrash, dropMissing);

  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => send("search", { query: search.value }), 250);
  });
  const filtersNow = () => ({
    model: model_.value || null, lora: lora.value || null, tag: tag.value || null,
    batch: batch.value.trim() || null, since: since.value || null, until: until.value || null,
    starred: starred.checked ? true : null, trashed: trashed.checked,
  });
  for (const control of [model_, lora, tag, batch, since, until, starred, trashed]) {
    control.addEventListener("change", () => send("filter", { filters: filtersNow() }));
  }

  function options(select, values, anyText, current) {
    const list = [h("option", { value: "", text: anyText })];
    for (const [value, text] of values) list.push(h("option", { value, text }));
    if (current && !values.some(([v]) => v === current)) list.push(h("option", { value: current, text: current }));
    select.replaceChildren(...list);
    select.value = current || "";
  }

  function drawToolbar() {
    const menus = get("menus") || {};
    const filters = get("filters") || {};
    if (document.activeElement !== search) search.value = get("query") || "";
    options(model_, (menus.models || []).map((m) => [m, m]), "any model", filters.model);
    options(lora, (menus.loras || []).map((m) => [m, m]), "any LoRA", filters.lora);
    const tags = menus.tags || [];
    options(tag, tags.map(([t, n]) => [t, `${t} (${n})`]), "any tag", (filters.tag || [])[0]);
    if (document.activeElement !== batch) batch.value = filters.batch || "";
    since.value = filters.since || "";
    until.value = filters.until || "";
    starred.checked = filters.starred === true;
    trashed.checked = Boolean(filters.trashed);
    const total = get("total");
    const shown = (get("records") || []).length;
    count.textContent = `${total.toLocaleString()} image${total === 1 ? "" : "s"}` +
      (shown < total ? ` · ${shown.toLocaleString()} loaded` : "");
    emptyTrash.hidden = !filters.trashed || total === 0;
    dropMissing.hidden = !(get("records") || []).some((r) => r.problem === "file missing");
    datalist.replaceChildren(...tags.map(([t]) => h("option", { value: t })));
  }
  const datalist = h("datalist", { id: `pixery-tags-${uid}` });

  // -- the message line and the selection bar ------------------------------------------------
  const note = h("div", { className: "pixery-gallery-message", role: "status", "aria-live": "polite" });
  function drawMessage() {
    const text = get("message");
    const busy = get("busy");
    note.dataset.kind = get("message_kind");
    note.replaceChildren(...[
      busy ? h("span", { className: "pixery-gallery-busy", text: busy }) : null,
      text ? h("span", { text }) : null,
      get("can_undo") ? button("Undo", () => send("undo")) : null,
    ].filter(Boolean));
    note.hidden = !text && !busy;
  }

  const tagField = (ids) => {
    const input = h("input", {
      type: "text", className: "pixery-gallery-tag-input", placeholder: "add a tag",
      list: `pixery-tags-${uid}`, "aria-label": "Add a tag",
    });
    const add = () => { if (input.value.trim()) send("tag", { tag: input.value, ids: ids() }); };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { add(); e.preventDefault(); } });
    return [input, button("Add tag", add)];
  };
  const exportField = (ids) => {
    const input = h("input", {
      type: "text", className: "pixery-gallery-folder", placeholder: "folder, e.g. exports/picks",
      "aria-label": "Export to folder",
    });
    return [input, button("Export", () => send("export", { folder: input.value, ids: ids() }))];
  };

  const selection = h("div", { className: "pixery-gallery-selection" });
  const selectedIds = () => get("selected") || [];
  const selectionParts = {
    words: h("span", { className: "pixery-gallery-selected" }),
    star: button("★ Star", () => send("star", { ids: selectedIds() })),
    unstar: button("☆ Unstar", () => send("unstar", { ids: selectedIds() })),
    tag: tagField(selectedIds),
    trash: button("Trash", () => send("trash", { ids: selectedIds() })),
    restore: button("Restore", () => send("restore", { ids: selectedIds() })),
    compare: button("Compare", () => send("compare", { ids: selectedIds() })),
    vary: button("Vary seed", () => send("vary", { ids: selectedIds() })),
    export: exportField(selectedIds),
    clear: button("Clear selection", () => send("select", { how: "clear" })),
  };
  selection.append(...Object.values(selectionParts).flat());
  function drawSelection() {
    const n = selectedIds().length;
    selection.hidden = n === 0 || get("mode") !== "gallery";
    selectionParts.words.textContent = `${n} selected`;
    const inTrash = Boolean((get("filters") || {}).trashed);
    selectionParts.trash.hidden = inTrash;
    selectionParts.restore.hidden = !inTrash;
    selectionParts.compare.disabled = n < 2 || n > 4;
    selectionParts.compare.title = "2 to 4 images side by side";
  }

  // -- the grid --------------------------------------------------------------------------------
  const grid = h("div", { className: "pixery-gallery-grid", role: "grid", "aria-label": "Archived images" });
  const more = h("div", { className: "pixery-gallery-more" });
  const scroller = h("div", { className: "pixery-gallery-scroller", tabIndex: 0 }, grid, more);
  const cells = new Map();

  function makeCell(id) {
    const thumb = h("div", { className: "pixery-gallery-thumb" });
    const star = h("span", { className: "pixery-gallery-star", "aria-hidden": "true", text: "★" });
    const box = h("input", { type: "checkbox", className: "pixery-gallery-pick", "aria-label": "Select" });
    const words = h("div", { className: "pixery-gallery-words" });
    const caption = h("div", { className: "pixery-gallery-caption" });
    const cell = h("div", { className: "pixery-gallery-cell", role: "gridcell", id: `pixery-${uid}-${id}` },
      thumb, star, box, words, caption);
    cell.addEventListener("click", (e) => {
      if (e.target === box) return;
      if (e.shiftKey) send("select", { id, how: "range" });
      else if (e.ctrlKey || e.metaKey) send("select", { id, how: "toggle" });
      else { send("focus", { id }); send("open", { id }); }
      scroller.focus({ preventScroll: true });
    });
    box.addEventListener("change", () => send("select", { id, how: "toggle" }));
    return { cell, thumb, star, box, words, caption, src: null };
  }

  function drawGrid() {
    const records = get("records") || [];
    const chosen = new Set(selectedIds());
    const focus = get("focus");
    const keep = new Set();
    const nodes = records.map((r) => {
      let c = cells.get(r.id);
      if (!c) cells.set(r.id, (c = makeCell(r.id)));
      keep.add(r.id);
      const key = r.thumb || `!${r.problem}`;
      if (c.src !== key) {
        c.thumb.replaceChildren(picture(r.thumb, r.problem, r.prompt));
        c.src = key;
      }
      c.cell.title = `${r.prompt}\n${r.caption}${r.tags.length ? `\ntags: ${r.tags.join(", ")}` : ""}`;
      c.words.textContent = r.prompt;
      c.caption.textContent = r.short;
      c.star.hidden = !r.starred;
      c.box.checked = chosen.has(r.id);
      c.cell.setAttribute("aria-selected", String(chosen.has(r.id)));
      c.cell.classList.toggle("pixery-gallery-focus", r.id === focus);
      c.cell.classList.toggle("pixery-gallery-missing", Boolean(r.problem));
      return c.cell;
    });
    for (const id of [...cells.keys()]) if (!keep.has(id)) cells.delete(id);
    grid.replaceChildren(...nodes);
    more.textContent = get("has_more") ? "Loading more…" : records.length ? "" : get("message") ? "" : "No image.";
    const focused = focus && cells.get(focus);
    if (focused) {
      scroller.setAttribute("aria-activedescendant", focused.cell.id);
      focused.cell.scrollIntoView({ block: "nearest" });
    }
    asking = false;
    lastVisible = ""; // tell Python again what is on screen (its window may have moved)
    onScroll();
  }

  function columns() {
    const kids = grid.children;
    if (!kids.length) return 1;
    const top = kids[0].offsetTop;
    let n = 0;
    while (n < kids.length && kids[n].offsetTop === top) n += 1;
    return Math.max(1, n);
  }

  let asking = false;
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

  let lastVisible = "";
  let frame = 0;
  function reportVisible() {
    frame = 0;
    // A page that does not fill the box leaves the "more" line in view: no new
    // intersection will fire, so ask here.
    if (more.offsetTop < scroller.scrollTop + scroller.clientHeight + 300) askForMore();
    const kids = grid.children;
    if (!kids.length || scroller.hidden) return;
    const top = scroller.scrollTop;
    const bottom = top + scroller.clientHeight;
    let first = -1;
    let last = -1;
    for (let i = 0; i < kids.length; i += 1) {
      const t = kids[i].offsetTop;
      if (t > bottom) break;
      if (t + kids[i].offsetHeight >= top) {
        if (first < 0) first = i;
        last = i;
      }
    }
    const key = `${first}:${last}`;
    if (first >= 0 && key !== lastVisible) {
      lastVisible = key;
      send("visible", { first, last });
    }
  }
  const onScroll = () => { if (!frame) frame = requestAnimationFrame(reportVisible); };
  scroller.addEventListener("scroll", onScroll);

  // -- the details view -----------------------------------------------------------------------
  const overlay = h("div", { className: "pixery-gallery-overlay", tabIndex: -1 });
  let shownDetail = null;

  const small = (item, label) =>
    h("button", { type: "button", className: "pixery-gallery-small", title: item.caption,
      "aria-label": `${label}: ${item.caption}`, onclick: () => send("open", { id: item.id }) },
    picture(item.thumb, item.problem));

  function copyText(text, btn) {
    const done = () => { btn.textContent = "Copied"; setTimeout(() => { btn.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    } else fallbackCopy(text, done);
  }
  function fallbackCopy(text, done) {
    const area = h("textarea", { className: "pixery-gallery-offscreen" });
    area.value = text;
    el.append(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }

  function detailView(d) {
    const ids = [d.id];
    const inGallery = get("mode") === "gallery";
    const head = h("div", { className: "pixery-detail-head" },
      inGallery ? button("‹", () => send("key", { key: "ArrowLeft" }), { title: "Previous (←)", "aria-label": "Previous image" }) : null,
      inGallery ? button("›", () => send("key", { key: "ArrowRight" }), { title: "Next (→)", "aria-label": "Next image" }) : null,
      h("span", { className: "pixery-detail-caption", text: d.caption }),
      button("× Close", () => send("close"), { title: "Close (Esc)" }));
    const image = h("div", { className: "pixery-detail-image" },
      d.image ? h("img", { src: d.image, alt: d.prompt }) : h("div", { className: "pixery-gallery-problem pixery-detail-problem", role: "alert", text: d.problem }));
    const actions = h("div", { className: "pixery-detail-actions" },
      button(d.starred ? "★ Starred" : "☆ Star", () => send("star", { ids, starred: !d.starred }),
        { title: "Star (s)", "aria-pressed": String(d.starred), className: "pixery-gallery-button pixery-detail-star" }),
      button("Remix", () => send("remix", { id: d.id }), { disabled: !get("linked") || d.missing, title: get("linked") ? "Load these settings into the panel" : "Link a panel: px.Gallery(panel=panel)" }),
      button("Vary seed", () => send("vary", { ids }), { disabled: d.missing, title: "The same settings with a new seed" }),
      button("Use as reference", () => send("reference", { id: d.id }), { disabled: !get("linked") || d.missing }),
      d.trashed ? button("Restore", () => send("restore", { ids })) : button("Trash", () => send("trash", { ids }), { title: "Trash (Delete)" }),
      d.missing ? button("Drop missing files from the index", () => send("forget_missing")) : null);
    const chips = h("div", { className: "pixery-detail-tags" },
      d.tags.map((t) => h("span", { className: "pixery-gallery-chip" }, t,
        h("button", { type: "button", className: "pixery-gallery-chip-x", "aria-label": `Remove tag ${t}`, text: "×", onclick: () => send("untag", { tag: t, ids }) }))),
      tagField(() => ids));
    const rows = h("table", { className: "pixery-detail-params" },
      h("tbody", {}, d.rows.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: v })))));
    const a1111 = h("pre", { className: "pixery-detail-a1111", text: d.a1111 });
    const copy = button("Copy", () => copyText(d.a1111, copy), { title: "Copy the A1111 text" });
    const section = (title, ...body) => h("div", { className: "pixery-detail-section" }, h("h4", { text: title }), ...body);
    const info = h("div", { className: "pixery-detail-info" }, actions, chips, rows,
      section("A1111 text (ComfyUI, Civitai and A1111 read it)", a1111, copy),
      section("File", h("code", { className: "pixery-detail-path", text: d.path })),
      d.references.length ? section("Reference images", h("div", { className: "pixery-detail-strip" }, d.references.map((src) => h("img", { src, alt: "reference image" })))) : null,
      d.parent ? section("Made from", small(d.parent, "Open the parent")) : null,
      d.children.length ? section("Made from this", h("div", { className: "pixery-detail-strip" }, d.children.map((c) => small(c, "Open")))) : null,
      d.batch && inGallery ? button("Show its batch", () => send("filter", { batch: d.batch })) : null,
      section("Export", ...exportField(() => ids)));
    return h("div", { className: "pixery-detail", role: "dialog", "aria-label": `Image ${d.id}` }, head,
      h("div", { className: "pixery-detail-body" }, image, info));
  }

  function compareView(c) {
    const n = c.items.length;
    const head = h("div", { className: "pixery-detail-head" },
      h("span", { className: "pixery-detail-caption", text: `Comparing ${n} images: what differs comes first, marked` }),
      get("mode") === "gallery" ? button("× Close", () => send("close_compare")) : null);
    const images = h("div", { className: "pixery-compare-images", style: `--pixery-columns:${n}` },
      c.items.map((item) => h("button", { type: "button", className: "pixery-compare-item", title: "Open its details",
        onclick: () => send("open", { id: item.id }) }, picture(item.image, item.problem, item.caption),
        h("span", { className: "pixery-gallery-caption", text: item.caption }))));
    const table = h("table", { className: "pixery-compare-params" }, h("tbody", {},
      c.rows.map((row) => h("tr", { className: row.differs ? "pixery-compare-differs" : "" },
        h("th", { text: row.label }), row.values.map((v) => h("td", { text: v }))))));
    return h("div", { className: "pixery-compare" }, head, images, table);
  }

  function drawOverlay() {
    const d = get("detail");
    const c = get("comparing");
    const mode = get("mode");
    el.dataset.mode = mode; // "gallery", "details" (the panel's) or "compare"
    const active = document.activeElement;
    const hadFocus = Boolean(active) && el.contains(active);
    const typing = hadFocus && active.matches("input, textarea, select");
    const view = d ? detailView(d) : c ? compareView(c) : null;
    const wasShown = !scroller.hidden;
    if (wasShown) scrollTop = scroller.scrollTop;
    overlay.replaceChildren(...(view ? [view] : []));
    overlay.hidden = !view;
    scroller.hidden = mode !== "gallery" || Boolean(view);
    toolbar.hidden = mode !== "gallery";
    el.classList.toggle("pixery-gallery-closed", mode === "details" && !d);
    if (!scroller.hidden && !wasShown) scroller.scrollTop = scrollTop;
    const id = d ? d.id : c ? "compare" : null;
    if (hadFocus && !typing) {
      if (id) overlay.focus({ preventScroll: true });
      else if (shownDetail) scroller.focus({ preventScroll: true });
    }
    shownDetail = id;
  }
  let scrollTop = 0;

  // -- the keyboard ---------------------------------------------------------------------------
  function onKey(e) {
    const target = e.target;
    if (target.matches && target.matches("input, textarea, select")) {
      if (e.key === "Escape") target.blur();
      return; // typing stays typing
    }
    if (target.tagName === "BUTTON" && (e.key === "Enter" || e.key === " ")) return;
    const ctrl = e.ctrlKey || e.metaKey;
    if (ctrl ? !CTRL_KEYS.has(e.key.toLowerCase()) : !KEYS.has(e.key)) return;
    if (e.altKey) return;
    e.preventDefault();
    e.stopPropagation();
    send("key", { key: e.key, columns: columns(), ctrl, shift: e.shiftKey });
  }
  el.addEventListener("keydown", onKey);

  el.append(toolbar, datalist, note, selection, scroller, overlay);

  const draws = {
    "change:records": [drawGrid, drawToolbar],
    "change:selected": [drawGrid, drawSelection],
    "change:focus": [drawGrid],
    "change:total": [drawToolbar],
    "change:has_more": [drawGrid],
    "change:menus": [drawToolbar],
    "change:filters": [drawToolbar, drawSelection],
    "change:query": [drawToolbar],
    "change:message": [drawMessage],
    "change:message_kind": [drawMessage],
    "change:busy": [drawMessage],
    "change:can_undo": [drawMessage],
    "change:detail": [drawOverlay],
    "change:comparing": [drawOverlay],
    "change:linked": [drawOverlay],
    "change:mode": [drawOverlay, drawSelection],
  };
  const handlers = Object.entries(draws).map(([event, fns]) => {
    const fn = () => fns.forEach((f) => f());
    model.on(event, fn);
    return [event, fn];
  });
  drawToolbar();
  drawMessage();
  drawSelection();
  drawGrid();
  drawOverlay();

  return () => {
    for (const [event, fn] of handlers) model.off(event, fn);
    observer.disconnect();
    scroller.removeEventListener("scroll", onScroll);
    el.removeEventListener("keydown", onKey);
  };
}

export default { render };
