// A model version: metrics, lineage (and an online update's guard decision), live
// metrics from feedback, input drift, evaluation plots, cross-validation, signature,
// parameters, and setting an alias after a confirmation dialog.
import { getJson, sendJson, seg } from "./lib/api.js";
import { byId, cellValue, clearErrors, fill, h, mainData, number, showError, table, when } from "./lib/dom.js";
import { showEvaluation } from "./lib/evaluation.js";
import { columnsTable, leaderboardTable } from "./lib/report.js";
import { metricNames } from "./lib/metrics.js";
import { showDrift, showLiveMetrics } from "./lib/monitoring.js";
import { guardDecision, onlineLineage, pairs } from "./lib/online.js";

const { modelName, version: versionText } = mainData();
const versionNumber = Number(versionText);
const base = `/api/v1/models/${seg(modelName)}`;
const versionPath = `${base}/versions/${versionNumber}`;

function showMetrics(version) {
  const names = metricNames([version]);
  if (version.online) byId("metrics-heading").textContent = "Metrics on the guard window";
  fill(byId("metrics"), names.length ? pairs(names.map((name) => [name, number(version.metrics[name])])) : h("p", { class: "muted" }, "No metric recorded."));
}

function importedPairs(info) {
  const tensors = (list) => list.map((t) => `${t.name} ${t.datatype} [${t.shape.join(", ")}]`).join("; ");
  const opset = Object.entries(info.opset || {}).map(([domain, v]) => `${domain} ${v}`).join(", ");
  return [
    ["Format", info.format],
    ["Framework", info.framework || "—"],
    ["Producer", `${info.producer_name || "—"} ${info.producer_version || ""}`],
    ["Opset", opset || "—"],
    ["Layout", info.layout],
    ["V2 inputs", tensors(info.tensors.inputs)],
    ["V2 outputs", tensors(info.tensors.outputs)],
  ];
}

function showLineage(version) {
  const dataset = ["Dataset", version.dataset_id ? h("a", { href: `/datasets/${seg(version.dataset_id)}` }, `dataset ${version.dataset_id.slice(0, 8)}`) : "—"];
  const stored = [
    ["Runtime", version.runtime],
    ["Artifact SHA-256", h("code", {}, version.artifact_sha256)],
  ];
  if (version.source === "imported") {
    fill(byId("lineage"), pairs([...importedPairs(version.imported), ["Imported", when(version.created_at)], ...stored]));
    return;
  }
  if (version.online) {
    fill(
      byId("lineage"),
      pairs([...onlineLineage(modelName, version), dataset, ["Registered", when(version.created_at)], ["Update time", `${number(version.training_seconds)} s`], ...stored]),
    );
    byId("guard-section").hidden = false;
    fill(byId("guard"), guardDecision(modelName, version));
    return;
  }
  fill(
    byId("lineage"),
    pairs([
      dataset,
      ["Training job", version.job_id ? h("a", { href: `/jobs/${seg(version.job_id)}` }, `job ${version.job_id.slice(0, 8)}`) : "—"],
      ["Trained", when(version.created_at)],
      ["Fit time", `${number(version.training_seconds)} s`],
      ...stored,
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

function failed(what, error) {
  return h("p", { class: "error-text", role: "alert" }, `${what} cannot be loaded: ${error.message}`);
}

async function showPlots(version) {
  const container = byId("plots");
  const note = byId("plots-note");
  if (!version.has_evaluation) {
    // Known from the version itself: no request that could only answer 404.
    if (version.source === "imported") {
      fill(container, h("p", { class: "muted", "data-testid": "no-evaluation" }, "An imported version has no training plots: it was trained outside mlserve."));
      return;
    }
    fill(container, h("p", { class: "muted", "data-testid": "no-evaluation" }, "No evaluation was recorded for this version: it was registered before mlserve recorded plot data."));
    return;
  }
  try {
    const evaluation = await getJson(`${versionPath}/evaluation`);
    const window = version.online ? version.online.guard.window : null;
    note.textContent =
      evaluation.rows === "guard window"
        ? `Computed by the online update on its guard window${window ? ` (samples #${number(window.first_sample_id)} to #${number(window.last_sample_id)}, ${number(evaluation.n_test)} rows)` : ""}: recent samples this version had not learned from.`
        : `Computed at training time on the held-out test split (${number(evaluation.n_test)} rows).`;
    showEvaluation(container, evaluation, version);
  } catch (error) {
    fill(container, failed("The plots", error));
  }
}

// Show, and show again whenever one of the form's selects changes; `show(isCurrent)`
// drops an answer that a newer request has replaced.
function wire(formId, show) {
  const form = byId(formId);
  let latest = 0;
  const run = () => {
    const ticket = ++latest;
    return show(() => ticket === latest);
  };
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("change", run);
  return run();
}

function liveMetrics(version) {
  const slot = byId("live-metrics");
  const show = (isCurrent) => showLiveMetrics(slot, versionPath, version, byId("live-window").value, isCurrent).catch((error) => fill(slot, failed("Live metrics", error)));
  return wire("live-form", show);
}

function drift(version) {
  const slot = byId("drift");
  if (!version.has_reference) {
    for (const select of byId("drift-form").querySelectorAll("select")) select.disabled = true;
    fill(slot, h("p", { class: "muted", "data-testid": "drift-empty" }, "This version has no reference statistics (it was registered before mlserve stored them): drift cannot be measured."));
    return Promise.resolve();
  }
  const show = (isCurrent) => showDrift(slot, versionPath, byId("drift-window").value, byId("drift-source").value, isCurrent).catch((error) => fill(slot, failed("Drift", error)));
  return wire("drift-form", show);
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
      const version = await getJson(versionPath);
      showAliases(version.aliases || []);
    } catch (error) {
      if (!showError(error, null)) byId("error-alias").textContent = error.message; // e.g. a role too low
    }
  });
}

async function main() {
  wireAliasForm();
  const version = await getJson(versionPath);
  const made = version.source === "imported" ? "imported" : version.online ? `online update of v${version.online.parent_version}` : "trained";
  byId("version-summary").textContent = `${version.algorithm} · ${version.task} · ${made} ${when(version.created_at)}`;
  showAliases(version.aliases || []);
  showMetrics(version);
  showLineage(version);
  showCv(version);
  showSignature(version.signature);
  fill(byId("columns"), columnsTable(version.report));
  fill(byId("leaderboard"), leaderboardTable(version.report));
  showParams(version.params);
  await Promise.all([liveMetrics(version), drift(version), showPlots(version)]);
}

main().catch((error) => {
  byId("page-error").textContent = error.message;
});
