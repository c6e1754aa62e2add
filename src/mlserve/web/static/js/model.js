// A model: its versions as a table sortable by any column, and the compare form.
import { getJson, seg } from "./lib/api.js";
import { byId, fill, h, mainData, number, versionUrl, when } from "./lib/dom.js";
import { cvMain, metricNames } from "./lib/metrics.js";

function columnsFor(versions, name) {
  const metrics = metricNames(versions).filter((metric) => metric !== "n_samples");
  const columns = [
    { title: "Version", value: (v) => v.version, cell: (v) => h("a", { href: versionUrl(name, v.version) }, `v${v.version}`) },
    { title: "Algorithm", value: (v) => v.algorithm },
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

async function main() {
  const { modelName } = mainData();
  const model = await getJson(`/api/v1/models/${seg(modelName)}`);
  const aliases = Object.entries(model.aliases || {}).sort(([x], [y]) => x.localeCompare(y));
  fill(byId("model-aliases"), aliases.length ? aliases.map(([alias, version]) => h("li", {}, h("a", { href: versionUrl(modelName, version) }, `${alias} → v${version}`))) : h("li", { class: "muted" }, "none"));
  fill(byId("versions"), sortableTable(model.versions, columnsFor(model.versions, modelName)));
  compareForm(model.versions);
}

main().catch((error) => {
  byId("page-error").textContent = error.message;
});
