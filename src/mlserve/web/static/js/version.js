// A model version: metrics, lineage, evaluation plots, cross-validation, signature,
// parameters, and setting an alias after a confirmation dialog.
import { getJson, sendJson, seg } from "./lib/api.js";
import { byId, cellValue, clearErrors, fill, h, mainData, number, showError, table, when } from "./lib/dom.js";
import { showEvaluation } from "./lib/evaluation.js";
import { metricNames } from "./lib/metrics.js";

const { modelName, version: versionText } = mainData();
const versionNumber = Number(versionText);
const base = `/api/v1/models/${seg(modelName)}`;

function pairs(entries) {
  return h("dl", { class: "pairs" }, entries.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function showMetrics(version) {
  const names = metricNames([version]);
  fill(byId("metrics"), names.length ? pairs(names.map((name) => [name, number(version.metrics[name])])) : h("p", { class: "muted" }, "No metric recorded."));
}

function showLineage(version) {
  fill(
    byId("lineage"),
    pairs([
      ["Dataset", version.dataset_id ? h("a", { href: `/datasets/${seg(version.dataset_id)}` }, `dataset ${version.dataset_id.slice(0, 8)}`) : "—"],
      ["Training job", version.job_id ? h("a", { href: `/jobs/${seg(version.job_id)}` }, `job ${version.job_id.slice(0, 8)}`) : "—"],
      ["Trained", when(version.created_at)],
      ["Fit time", `${number(version.training_seconds)} s`],
      ["Runtime", version.runtime],
      ["Artifact SHA-256", h("code", {}, version.artifact_sha256)],
    ]),
  );
}

function showCv(version) {
  const cv = version.cv_metrics || {};
  const names = Object.keys(cv).filter((name) => name !== "folds");
  if (!cv.folds || !names.length) {
    fill(byId("cv"), h("p", { class: "muted" }, "No cross-validation for this version."));
    return;
  }
  const rows = names.map((name) => [name, number(cv[name].mean), number(cv[name].std), (cv[name].values || []).map(number).join(", ")]);
  fill(byId("cv"), table(["Metric", "Mean", "Std", `Per fold (${cv.folds})`], rows, { numeric: [1, 2] }));
}

function showSignature(signature) {
  const rows = signature.inputs.map((input) => [
    h("code", {}, input.name),
    input.type,
    input.nullable ? "yes" : "no",
    input.categories ? input.categories.slice(0, 20).join(", ") + (input.categories.length > 20 ? ` … (${input.categories.length})` : "") : "—",
  ]);
  const output = signature.output;
  fill(
    byId("signature"),
    table(["Feature", "Type", "Accepts null", "Categories seen"], rows),
    h("p", {}, `Output: `, h("code", {}, output.name), ` (${output.type})`, output.classes ? `, classes ${output.classes.join(", ")}` : ""),
  );
}

function showParams(params) {
  const rows = Object.keys(params || {}).sort().map((name) => [h("code", {}, name), cellValue(params[name])]);
  fill(byId("params"), table(["Parameter", "Value"], rows));
}

function showAliases(aliases) {
  const list = document.querySelector('[data-testid="aliases"]');
  fill(list, aliases.length ? aliases.map((alias) => h("li", {}, alias)) : h("li", { class: "muted" }, "none"));
}

async function showPlots(version) {
  const container = byId("plots");
  try {
    const evaluation = await getJson(`${base}/versions/${versionNumber}/evaluation`);
    showEvaluation(container, evaluation, version);
  } catch (error) {
    const text = error.status === 404 ? "No evaluation was recorded for this version (it was trained before mlserve recorded plots, or not by a training job)." : `The plots cannot be loaded: ${error.message}`;
    fill(container, h("p", { class: "muted" }, text));
  }
}

function wireAliasForm() {
  const form = byId("alias-form");
  const dialog = byId("alias-dialog");
  const input = byId("alias");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const alias = input.value.trim();
    let text = `Point the alias “${alias}” of ${modelName} at version ${versionNumber}?`;
    try {
      const model = await getJson(base);
      const current = (model.aliases || {})[alias];
      if (current === versionNumber) text = `“${alias}” already points at version ${versionNumber}; set it again?`;
      else if (current) text = `Move the alias “${alias}” of ${modelName} from version ${current} to version ${versionNumber}? Clients using it switch at once.`;
    } catch {
      // the PUT will report any problem
    }
    byId("alias-dialog-text").textContent = text;
    dialog.showModal();
  });
  byId("alias-cancel").addEventListener("click", () => dialog.close());
  byId("alias-confirm").addEventListener("click", async () => {
    dialog.close();
    try {
      await sendJson("PUT", `${base}/aliases/${seg(input.value.trim())}`, { version: versionNumber });
      const version = await getJson(`${base}/versions/${versionNumber}`);
      showAliases(version.aliases || []);
    } catch (error) {
      if (!showError(error, null)) byId("error-alias").textContent = error.message; // e.g. a role too low
    }
  });
}

async function main() {
  wireAliasForm();
  const version = await getJson(`${base}/versions/${versionNumber}`);
  byId("version-summary").textContent = `${version.algorithm} · ${version.task} · trained ${when(version.created_at)}`;
  showAliases(version.aliases || []);
  showMetrics(version);
  showLineage(version);
  showCv(version);
  showSignature(version.signature);
  showParams(version.params);
  await showPlots(version);
}

main().catch((error) => {
  byId("page-error").textContent = error.message;
});
