// Two versions of a model side by side: overview, metrics with their difference,
// cross-validation, and parameters (differences marked, in text and colour).
import { getJson, seg } from "./lib/api.js";
import { byId, cellValue, fill, h, mainData, number, table, versionUrl, when } from "./lib/dom.js";
import { LOWER_IS_BETTER, metricNames } from "./lib/metrics.js";

function same(x, y) {
  return JSON.stringify(x) === JSON.stringify(y);
}

function verdict(metric, a, b) {
  if (typeof a !== "number" || typeof b !== "number" || a === b || metric === "n_samples") return "";
  const better = LOWER_IS_BETTER.has(metric) ? b < a : b > a;
  return better ? "B better" : "B worse";
}

function overview(name, a, b) {
  const rows = [
    ["Version", h("a", { href: versionUrl(name, a.version) }, `v${a.version}`), h("a", { href: versionUrl(name, b.version) }, `v${b.version}`)],
    ["Algorithm", a.algorithm, b.algorithm],
    ["Task", a.task, b.task],
    ["Dataset", h("a", { href: `/datasets/${seg(a.dataset_id)}` }, a.dataset_id.slice(0, 8)), h("a", { href: `/datasets/${seg(b.dataset_id)}` }, b.dataset_id.slice(0, 8))],
    ["Aliases", (a.aliases || []).join(", ") || "—", (b.aliases || []).join(", ") || "—"],
    ["Training time (s)", number(a.training_seconds), number(b.training_seconds)],
    ["Runtime", a.runtime, b.runtime],
    ["Created", when(a.created_at), when(b.created_at)],
  ];
  return table(["", "A", "B"], rows);
}

function metrics(a, b) {
  const rows = metricNames([a, b]).map((metric) => {
    const x = (a.metrics || {})[metric] ?? null;
    const y = (b.metrics || {})[metric] ?? null;
    const difference = typeof x === "number" && typeof y === "number" ? number(y - x) : "—";
    return [metric, number(x), number(y), difference, verdict(metric, x, y)];
  });
  return table(["Metric", "A", "B", "B − A", ""], rows, { numeric: [1, 2, 3] });
}

function crossValidation(a, b) {
  const spread = (cv) => (cv ? `${number(cv.mean)} ± ${number(cv.std)}` : "—");
  const names = [...new Set([...Object.keys(a.cv_metrics || {}), ...Object.keys(b.cv_metrics || {})])].filter((name) => name !== "folds");
  const rows = [["folds", number((a.cv_metrics || {}).folds ?? 0), number((b.cv_metrics || {}).folds ?? 0)]];
  for (const name of names) rows.push([name, spread((a.cv_metrics || {})[name]), spread((b.cv_metrics || {})[name])]);
  return table(["Metric", "A", "B"], rows, { numeric: [1, 2] });
}

function parameters(a, b, onlyDifferences) {
  const names = [...new Set([...Object.keys(a.params || {}), ...Object.keys(b.params || {})])].sort();
  const rows = [];
  for (const name of names) {
    const x = (a.params || {})[name];
    const y = (b.params || {})[name];
    const differs = !same(x, y);
    if (onlyDifferences && !differs) continue;
    const row = h("tr", { class: differs ? "differs" : null }, h("td", {}, h("code", {}, name)), h("td", {}, cellValue(x)), h("td", {}, cellValue(y)), h("td", {}, differs ? "differs" : ""));
    rows.push(row);
  }
  const wrap = table(["Parameter", "A", "B", ""], []);
  fill(wrap.querySelector("tbody"), rows.length ? rows : h("tr", {}, h("td", { colspan: "4", class: "muted" }, "No difference.")));
  return wrap;
}

async function main() {
  const { modelName, a: first, b: second } = mainData();
  const [a, b] = await Promise.all([first, second].map((v) => getJson(`/api/v1/models/${seg(modelName)}/versions/${seg(v)}`)));
  fill(byId("compare-overview"), overview(modelName, a, b));
  fill(byId("compare-metrics"), metrics(a, b));
  fill(byId("compare-cv"), crossValidation(a, b));
  const toggle = byId("only-differences");
  const showParams = () => fill(byId("compare-params"), parameters(a, b, toggle.checked));
  toggle.addEventListener("change", showParams);
  showParams();
}

main().catch((error) => {
  byId("page-error").textContent = error.message;
});
