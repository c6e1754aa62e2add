// A model: its versions as a table sortable by any column, its online learning state with
// "Update now", and the compare form.
import { getJson, request, sendJson, seg } from "./lib/api.js";
import { byId, clearErrors, fill, h, mainData, number, showError, versionUrl, when } from "./lib/dom.js";
import { cvMain, metricNames } from "./lib/metrics.js";
import { renderOnlineState } from "./lib/online.js";

const { modelName } = mainData();
const base = `/api/v1/models/${seg(modelName)}`;
const POLL_MS = 1000;
const POLL_TIMES = 15;

function columnsFor(versions, name) {
  const metrics = metricNames(versions).filter((metric) => metric !== "n_samples");
  const columns = [
    { title: "Version", value: (v) => v.version, cell: (v) => h("a", { href: versionUrl(name, v.version) }, `v${v.version}`) },
    { title: "Algorithm", value: (v) => v.algorithm },
    { title: "Made by", value: madeBy },
    { title: "Aliases", value: (v) => (v.aliases || []).join(", ") },
  ];
  for (const metric of metrics) {
    columns.push({ title: metric, numeric: true, value: (v) => (v.metrics || {})[metric] ?? null, cell: (v) => number((v.metrics || {})[metric] ?? null) });
  }
  columns.push({
    title: "CV",
    numeric: true,
    value: (v) => (cvMain(v) ? cvMain(v).mean : null),
    cell: (v) => {
      const cv = cvMain(v);
      return cv ? `${cv.name} ${number(cv.mean)} ± ${number(cv.std)}` : "—";
    },
  });
  columns.push({ title: "Runtime", value: (v) => v.runtime });
  columns.push({ title: "Created", value: (v) => v.created_at, cell: (v) => when(v.created_at) });
  return columns;
}

function madeBy(v) {
  if (v.source === "imported") return `import (${v.imported.format}, ${v.imported.framework || "unknown"})`;
  return v.online ? `update of v${v.online.parent_version} (${v.online.status})` : "training";
}

async function importModel(event) {
  event.preventDefault();
  const form = byId("import-form");
  clearErrors(form);
  byId("import-error").textContent = "";
  const file = byId("import-file").files[0];
  if (!file) {
    byId("error-import-file").textContent = "Choose an .onnx or .skops file first.";
    return;
  }
  const data = new FormData();
  data.append("file", file, file.name);
  for (const field of ["metadata", "sample"]) {
    const text = byId(`import-${field}`).value.trim();
    if (text) data.append(field, text);
  }
  byId("import-button").disabled = true;
  byId("import-status").textContent = "Checking the file…";
  try {
    const version = await (await request(`${base}/versions`, { method: "POST", body: data })).json();
    byId("import-status").textContent = `Imported as version ${version.version}.`;
    window.location.assign(versionUrl(modelName, version.version));
  } catch (error) {
    byId("import-status").textContent = "";
    showError(error, byId("import-error"));
  } finally {
    byId("import-button").disabled = false;
  }
}

byId("import-form").addEventListener("submit", importModel);

function compareValues(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1; // missing values last, whatever the order
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

function sortableTable(versions, columns) {
  const state = { column: 0, direction: "descending" };
  const body = h("tbody");
  const headers = columns.map((column, index) => {
    const button = h("button", { type: "button", class: "sort", "aria-describedby": "sort-hint" }, column.title);
    const th = h("th", { scope: "col", class: column.numeric ? "number" : null }, button);
    button.addEventListener("click", () => {
      state.direction = state.column === index && state.direction === "ascending" ? "descending" : "ascending";
      state.column = index;
      render();
    });
    return th;
  });
  function render() {
    const column = columns[state.column];
    const sign = state.direction === "ascending" ? 1 : -1;
    const sorted = [...versions].sort((a, b) => {
      const x = column.value(a);
      const y = column.value(b);
      if (x === null || x === undefined || y === null || y === undefined) return compareValues(x, y);
      return sign * compareValues(x, y);
    });
    headers.forEach((th, index) => {
      if (index === state.column) th.setAttribute("aria-sort", state.direction);
      else th.removeAttribute("aria-sort");
    });
    fill(body, sorted.map((version) => h("tr", {}, columns.map((c) => h("td", { class: c.numeric ? "number" : null }, c.cell ? c.cell(version) : (c.value(version) ?? "—"))))));
  }
  render();
  return h("div", { class: "table-wrap", tabindex: "0" }, h("table", { "data-testid": "versions" }, h("thead", {}, h("tr", {}, headers)), body));
}

function compareForm(versions) {
  const numbers = versions.map((v) => v.version).sort((a, b) => b - a);
  const b = numbers[0];
  const a = numbers[1] ?? numbers[0];
  for (const [id, chosen] of [["version-a", a], ["version-b", b]]) {
    fill(byId(id), numbers.map((n) => h("option", { value: String(n), selected: n === chosen }, `v${n}`)));
  }
}

async function showModel() {
  const model = await getJson(base);
  const aliases = Object.entries(model.aliases || {}).sort(([x], [y]) => x.localeCompare(y));
  fill(byId("model-aliases"), aliases.length ? aliases.map(([alias, version]) => h("li", {}, h("a", { href: versionUrl(modelName, version) }, `${alias} → v${version}`), " · ", h("a", { href: `/models/${encodeURIComponent(modelName)}/aliases/${encodeURIComponent(alias)}/traffic` }, "traffic"))) : h("li", { class: "muted" }, "none"));
  fill(byId("versions"), sortableTable(model.versions, columnsFor(model.versions, modelName)));
  compareForm(model.versions);
  return model;
}

async function showOnline(versions) {
  const state = await getJson(`${base}/online`);
  renderOnlineState(byId("online"), modelName, state, versions);
  // Only an algorithm that learns incrementally can be updated: no enabled button under
  // "cannot learn incrementally".
  const button = byId("online-update");
  button.disabled = !state.incremental;
  button.title = state.incremental ? "" : "This model's algorithm cannot learn incrementally; retrain it instead.";
  return state;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// After "Update now": follow the state until the update shows (a new head, an error, a
// new time of the last update), then show the model again.
async function follow(before) {
  for (let i = 0; i < POLL_TIMES; i += 1) {
    await pause(POLL_MS);
    const state = await getJson(`${base}/online`);
    if (state.head_version !== before.head_version || state.updated_at !== before.updated_at || state.pending !== before.pending) {
      const model = await showModel();
      await showOnline(model.versions);
      byId("online-update-status").textContent = state.head_version !== before.head_version ? `Updated: version ${state.head_version} is the new head.` : "The update ran.";
      return;
    }
  }
  byId("online-update-status").textContent = "Queued; the update has not run yet (the workers may be busy).";
}

function wireUpdate() {
  const button = byId("online-update");
  let busy = false; // not `disabled`: that would take the keyboard focus away from the button
  button.addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    button.setAttribute("aria-busy", "true");
    byId("error-online-update").textContent = "";
    byId("online-update-status").textContent = "";
    try {
      const before = await sendJson("POST", `${base}/online-update`);
      byId("online-update-status").textContent = `Update queued: ${number(before.pending)} samples waiting.`;
      await follow(before);
    } catch (error) {
      // 409 for a model that cannot learn incrementally: the API's hint says what to do.
      byId("error-online-update").textContent = error.message;
    } finally {
      busy = false;
      button.removeAttribute("aria-busy");
    }
  });
}

async function main() {
  wireUpdate();
  const model = await showModel();
  await showOnline(model.versions).catch((error) => fill(byId("online"), h("p", { class: "error-text" }, `The online state cannot be loaded: ${error.message}`)));
}

main().catch((error) => {
  byId("page-error").textContent = error.message;
});
