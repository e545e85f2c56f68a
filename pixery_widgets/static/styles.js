// Carries the package's stylesheet (the palette and the classes of the ipywidgets
// parts) into the page; anywidget loads it from `_css`. Draws nothing.

function render({ el }) {
  el.hidden = true;
}

export default { render };
