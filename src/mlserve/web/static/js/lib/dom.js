// Small DOM helpers. Text from the server always goes in as text (textContent),
// never as HTML.

export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = String(value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function fill(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

export function byId(id) {
  return document.getElementById(id);
}

export function mainData() {
  return document.getElementById("main").dataset;
}

// A table; each row is a list of cells (text, Node, or {value, class}).
export function table(headers, rows, { caption, numeric = [] } = {}) {
  const head = h("tr", {}, headers.map((name, i) => h("th", { scope: "col", class: numeric.includes(i) ? "number" : null }, name)));
  const body = rows.map((row) => h("tr", {}, row.map((cell, i) => h("td", { class: numeric.includes(i) ? "number" : null }, cell))));
  // tabindex: a wide table scrolls sideways, and keyboard users must be able to scroll it.
  return h("div", { class: "table-wrap", tabindex: "0" }, h("table", {}, caption ? h("caption", { class: "muted" }, caption) : null, h("thead", {}, head), h("tbody", {}, body)));
}

// --- showing errors --------------------------------------------------------------

export function clearErrors(root) {
  for (const element of root.querySelectorAll(".field-error, .form-error")) element.textContent = "";
  for (const element of root.querySelectorAll('[aria-invalid="true"]')) element.removeAttribute("aria-invalid");
}

// Put an API error next to the field it names (element #error-<field>), else in `fallback`.
export function showError(error, fallback) {
  const field = error && error.details ? error.details.field : null;
  const slot = field ? byId(`error-${field}`) : null;
  const message = error instanceof Error ? error.message : String(error);
  if (slot) {
    slot.textContent = message;
    const input = slot.dataset.for ? byId(slot.dataset.for) : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    return slot;
  }
  if (fallback) fallback.textContent = message;
  return fallback;
}

// --- formatting ----------------------------------------------------------------------

const SIGNIFICANT = new Intl.NumberFormat("en", { maximumSignificantDigits: 4 });
const INTEGER = new Intl.NumberFormat("en");

export function number(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return INTEGER.format(value);
  return SIGNIFICANT.format(value);
}

export function bytes(size) {
  if (size === null || size === undefined) return "—";
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function cellValue(value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "—");
  if (typeof value === "object") return JSON.stringify(value);
  return typeof value === "number" ? number(value) : String(value);
}

// The metric a model is judged by: r2 for regression, accuracy for classification.
export function keyMetric(version) {
  if (!version || !version.metrics) return null;
  const name = version.task === "classification" ? "accuracy" : "r2";
  const value = version.metrics[name];
  return value === undefined ? null : { name, value };
}

export function keyMetricText(version) {
  const metric = keyMetric(version);
  return metric ? `${metric.name} ${number(metric.value)}` : "—";
}

export function statusBadge(status, attributes = {}) {
  return h("span", { class: `status status-${status}`, ...attributes }, status);
}

export function modelUrl(name) {
  return `/models/${encodeURIComponent(name)}`;
}

export function versionUrl(name, version) {
  return `${modelUrl(name)}/versions/${version}`;
}
