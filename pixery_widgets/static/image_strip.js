// The strip of earlier images under ImageOutput: small thumbnails (data URLs
// kept light in the widget state) that bring one back when clicked. Python
// holds the images; this only reports which one was clicked via `selected`.

function render({ model, el }) {
  el.classList.add("pixery", "pixery-image-strip");
  el.setAttribute("role", "list");

  function draw() {
    const items = model.get("items") || [];
    const selected = model.get("selected");
    const buttons = items.map((item, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "pixery-thumb";
      button.setAttribute("role", "listitem");
      button.title = item.title || "";
      button.setAttribute("aria-label", `Show image ${index + 1}: ${item.title || ""}`);
      if (index === selected) button.setAttribute("aria-current", "true");
      const img = document.createElement("img");
      img.src = item.src;
      img.alt = "";
      button.appendChild(img);
      button.addEventListener("click", () => {
        model.set("selected", index);
        model.save_changes();
      });
      return button;
    });
    el.replaceChildren(...buttons);
    el.hidden = items.length < 2;
  }

  model.on("change:items", draw);
  model.on("change:selected", draw);
  draw();
  return () => {
    model.off("change:items", draw);
    model.off("change:selected", draw);
  };
}

export default { render };
