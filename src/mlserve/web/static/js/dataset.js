// A dataset: summary, schema, per-column distributions, first rows.
import { getJson, seg } from "./lib/api.js";
import { byId, bytes, cellValue, fill, h, mainData, number, table, when } from "./lib/dom.js";
import { histogram, topValues } from "./lib/plots.js";

const PREVIEW_ROWS = 20;

function summary(dataset) {
  const pairs = [
    ["Rows", number(dataset.n_rows)],
    ["Columns", number(dataset.n_columns)],
    ["Uploaded file", `${dataset.filename} (${dataset.source_format})`],
    ["Stored size", bytes(dataset.size_bytes)],
    ["SHA-256", h("code", {}, dataset.sha256)],
    ["Uploaded", when(dataset.created_at)],
    ["Id", h("code", {}, dataset.id)],
  ];
  const same = dataset.same_content_as || [];
  if (same.length) {
    const links = same.map((id) => h("a", { href: `/datasets/${seg(id)}` }, id));
    pairs.push(["Same content as", h("span", { "data-testid": "same-content" }, ["uploaded before: ", ...links.flatMap((a, i) => (i ? [", ", a] : [a]))])]);
  }
  return h("dl", { class: "pairs" }, pairs.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function statistics(column) {
  if (column.top) return column.top.slice(0, 3).map((item) => `${item.value} (${number(item.count)})`).join(", ");
  if (column.min === undefined) return "—";
  return `min ${number(column.min)} · max ${number(column.max)} · mean ${number(column.mean)} · std ${number(column.std)}`;
}

function schema(dataset) {
  const rows = dataset.columns.map((column) => {
    const share = dataset.n_rows ? ` (${number((100 * column.missing) / dataset.n_rows)} %)` : "";
    return [h("strong", {}, column.name), column.type, `${number(column.missing)}${share}`, number(column.unique), statistics(column)];
  });
  return table(["Column", "Type", "Missing", "Unique", "Statistics"], rows, { numeric: [2, 3] });
}

function distributions(dataset) {
  const figures = [];
  const pending = [];
  for (const column of dataset.columns) {
    let kind = null;
    if (column.histogram && column.histogram.counts.length) kind = "histogram";
    else if (column.top && column.top.length) kind = "top";
    const plot = kind ? h("div", { class: "plot small", "data-plot": kind }) : null;
    if (plot) pending.push({ plot, column, kind });
    figures.push(h("figure", {}, h("figcaption", {}, column.name), plot || h("p", { class: "muted" }, "No distribution recorded for this column.")));
  }
  fill(byId("distributions"), figures);
  for (const { plot, column, kind } of pending) {
    if (kind === "histogram") histogram(plot, column.histogram, column.name);
    else topValues(plot, column.top, column.name);
  }
}

async function preview(datasetId) {
  const slot = byId("preview");
  try {
    const data = await getJson(`/api/v1/datasets/${seg(datasetId)}/preview`, { rows: PREVIEW_ROWS });
    // Data as stored, not rounded like statistics: -122.23 stays -122.23.
    const rows = data.rows.map((row) => row.map((value) => (typeof value === "number" ? String(value) : cellValue(value))));
    const caption = `The first ${number(data.rows.length)} of ${number(data.n_rows)} rows`;
    // A wide table scrolls inside its own box instead of widening the page.
    const scroller = h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": caption, "data-testid": "preview-scroll" }, table(data.columns, rows, { caption }));
    fill(slot, scroller);
    slot.querySelector("table").classList.add("preview");
  } catch (error) {
    fill(slot, h("p", { class: "error-text", role: "alert" }, `No preview: ${error.message}`));
  }
}

async function main() {
  const { datasetId } = mainData();
  const previewDone = preview(datasetId);
  try {
    const dataset = await getJson(`/api/v1/datasets/${seg(datasetId)}`);
    fill(byId("summary"), summary(dataset));
    fill(byId("schema"), schema(dataset));
    distributions(dataset);
  } catch (error) {
    byId("page-error").textContent = error.message;
  }
  await previewDone;
}

main();
