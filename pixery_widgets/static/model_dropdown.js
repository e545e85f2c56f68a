// The model menu: a native <select> with <optgroup>s and disabled <option>s,
// so it is keyboard-usable and accessible as it is. State lives in Python:
// `entries` (the menu), `value` (the chosen id), `user_chose` (set here when
// the user picks). Python refuses a disabled value as well; this only saves a
// round trip.

function optionText(entry) {
  return entry.reason ? `${entry.label} — ${entry.reason}` : entry.label;
}

function render({ model, el }) {
  el.classList.add("pixery", "pixery-model-dropdown");
  const id = `pixery-model-${Math.random().toString(36).slice(2, 10)}`;

  const label = document.createElement("label");
  label.className = "pixery-model-label";
  label.htmlFor = id;
  label.textContent = model.get("description") || "Model";

  const select = document.createElement("select");
  select.className = "pixery-model-select";
  select.id = id;

  el.append(label, select);

  function entries() {
    return model.get("entries") || [];
  }

  function draw() {
    const value = model.get("value");
    const list = entries();
    const fragment = document.createDocumentFragment();
    let group = null;
    let groupName = null;
    if (!list.some((e) => e.id === value)) {
      const none = document.createElement("option");
      none.value = "";
      none.textContent = list.length ? "— choose a model —" : "— no models —";
      none.disabled = true;
      fragment.appendChild(none);
    }
    for (const entry of list) {
      if (group === null || entry.group !== groupName) {
        group = document.createElement("optgroup");
        group.label = entry.group;
        groupName = entry.group;
        fragment.appendChild(group);
      }
      const option = document.createElement("option");
      option.value = entry.id;
      option.textContent = optionText(entry);
      option.disabled = !entry.enabled;
      option.dataset.provider = entry.provider;
      if (entry.loaded) option.dataset.loaded = "true";
      if (entry.reason) option.title = entry.reason;
      group.appendChild(option);
    }
    select.replaceChildren(fragment);
    select.value = list.some((e) => e.id === value) ? value : "";
    select.disabled = Boolean(model.get("disabled"));
    el.dataset.value = value || "";
  }

  function onChange() {
    const chosen = select.value;
    const entry = entries().find((e) => e.id === chosen);
    if (!entry || !entry.enabled) {
      draw(); // put the shown value back; Python would refuse it anyway
      return;
    }
    model.set("value", chosen);
    model.set("user_chose", true);
    model.save_changes();
  }

  select.addEventListener("change", onChange);
  model.on("change:entries", draw);
  model.on("change:value", draw);
  model.on("change:disabled", draw);
  draw();

  return () => {
    select.removeEventListener("change", onChange);
    model.off("change:entries", draw);
    model.off("change:value", draw);
    model.off("change:disabled", draw);
  };
}

export default { render };
