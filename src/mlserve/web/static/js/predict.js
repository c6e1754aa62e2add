// Predict: a form built from the version's signature, posted as JSON to
// POST /api/v1/models/<name>/predict; and a CSV file posted to .../predict/csv,
// whose answer the browser downloads.
import { getJson, request, sendJson, seg } from "./lib/api.js";
import { byId, clearErrors, fill, h, mainData, number, showError, table } from "./lib/dom.js";
import { featureFields } from "./lib/features.js";
import { waterfall } from "./lib/plots.js";

const { modelName } = mainData();
const base = `/api/v1/models/${seg(modelName)}`;
let selector = {}; // {version} or {alias} or {} (the server's default)
let signatureForm = null;
let current = null; // the version whose signature the form shows

function choiceOf(data) {
  if (data.version) return `version:${data.version}`;
  if (data.alias) return `alias:${data.alias}`;
  return "";
}

function selectorOf(choice) {
  if (choice.startsWith("version:")) return { version: Number(choice.slice(8)) };
  if (choice.startsWith("alias:")) return { alias: choice.slice(6) };
  return {};
}

function fillVersionChoices(model, chosen) {
  const fallback = model.aliases.production ? `production → v${model.aliases.production}` : `latest, v${model.latest_version}`;
  const options = [h("option", { value: "" }, `default (${fallback})`)];
  for (const [alias, version] of Object.entries(model.aliases).sort(([a], [b]) => a.localeCompare(b))) {
    options.push(h("option", { value: `alias:${alias}` }, `alias ${alias} (v${version})`));
  }
  for (const version of model.versions) {
    options.push(h("option", { value: `version:${version.version}` }, `v${version.version} · ${version.algorithm}`));
  }
  fill(byId("version-choice"), options);
  byId("version-choice").value = chosen;
}

function resolve(model) {
  if (selector.version) return selector.version;
  if (selector.alias) return model.aliases[selector.alias] ?? null;
  return model.aliases.production ?? model.latest_version;
}

async function load(model) {
  const chosen = resolve(model);
  if (!chosen) throw new Error(selector.alias ? `model ${modelName} has no alias ${selector.alias}` : "this model has no version");
  current = await getJson(`${base}/versions/${chosen}`);
  byId("version-used").textContent = `Predictions come from version ${current.version} (${current.algorithm}).`;
  signatureForm = featureFields(current.signature.inputs);
  fill(byId("features"), signatureForm.fields);
  byId("fill-example").hidden = !current.dataset_id;
}

function showResult(result) {
  const value = result.predictions[0];
  byId("prediction").textContent = String(value);
  byId("prediction-version").textContent = ` (version ${result.model_version})`;
  const slot = byId("probabilities");
  if (!result.probabilities) {
    fill(slot);
    return;
  }
  const rows = result.classes.map((label, i) => [String(label), number(result.probabilities[0][i])]);
  fill(slot, table(["Class", "Probability"], rows, { caption: "Probability of each class", numeric: [1] }));
}

// The contributions of each feature to the version that answered (POST .../explain).
async function explain(row, version) {
  const slot = byId("explanation");
  const note = byId("explanation-note");
  fill(slot);
  note.textContent = "Explaining…";
  try {
    const answer = await sendJson("POST", `${base}/explain`, { instances: [row] }, { version });
    const [first] = answer.explanations;
    const explained = first.class === undefined ? "" : ` of class ${first.class}`;
    note.textContent = `Each feature's contribution to the output${explained} (${answer.output_space}), from the base value: ${answer.method} SHAP explainer.`;
    waterfall(slot, first, answer.output_space);
  } catch (error) {
    note.textContent = `No explanation: ${error.message}`;
  }
}

async function predictOne(event) {
  event.preventDefault();
  const form = byId("predict-form");
  clearErrors(form);
  byId("prediction").textContent = "";
  byId("prediction-version").textContent = "";
  fill(byId("probabilities"));
  try {
    const row = signatureForm.read();
    const result = await sendJson("POST", `${base}/predict`, { instances: [row] }, selector);
    showResult(result);
    await explain(row, result.model_version);
  } catch (error) {
    showError(error, byId("predict-error"));
  }
}

async function fillExample() {
  try {
    const preview = await getJson(`/api/v1/datasets/${seg(current.dataset_id)}/preview`, { rows: 1 });
    signatureForm.set(Object.fromEntries(preview.columns.map((name, i) => [name, preview.rows[0][i]])));
  } catch (error) {
    byId("predict-error").textContent = `No example row: ${error.message}`;
  }
}

function filenameOf(response) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(header);
  return match ? match[1] : `${modelName}-predictions.csv`;
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function predictCsv(event) {
  event.preventDefault();
  const error = byId("batch-error");
  const status = byId("batch-status");
  error.textContent = "";
  const file = byId("csv-file").files[0];
  if (!file) {
    error.textContent = "Choose a CSV file first.";
    return;
  }
  const body = new FormData();
  body.append("file", file, file.name);
  byId("batch-button").disabled = true;
  status.textContent = "Predicting…";
  try {
    const response = await request(`${base}/predict/csv`, { method: "POST", body, query: selector });
    const filename = filenameOf(response);
    const blob = await response.blob();
    download(blob, filename);
    status.textContent = `Downloaded ${filename}.`;
  } catch (failure) {
    status.textContent = "";
    const details = failure.details || {};
    const where = [details.row !== undefined ? `row ${details.row}` : null, details.field ? `column ${details.field}` : null].filter(Boolean);
    error.textContent = where.length ? `${failure.message} (${where.join(", ")})` : failure.message;
  } finally {
    byId("batch-button").disabled = false;
  }
}

async function main() {
  const data = mainData();
  selector = selectorOf(choiceOf(data));
  const model = await getJson(base);
  fillVersionChoices(model, choiceOf(data));
  byId("version-choice").addEventListener("change", async (event) => {
    selector = selectorOf(event.target.value);
    const url = new URL(window.location.href);
    url.search = new URLSearchParams(selector).toString();
    window.history.replaceState(null, "", url);
    await load(model).catch((failure) => (byId("page-error").textContent = failure.message));
  });
  await load(model);
}

byId("predict-form").addEventListener("submit", predictOne);
byId("fill-example").addEventListener("click", fillExample);
byId("batch-form").addEventListener("submit", predictCsv);
main().catch((error) => {
  byId("page-error").textContent = error.message;
});
