// The evaluation plots of a version, from GET /api/v1/models/<name>/versions/<v>/evaluation.
import { fill, h, number } from "./dom.js";
import * as plots from "./plots.js";

// What the evaluated rows are called: a training job's test split, or an online
// update's guard window (evaluation.rows; absent before mlserve recorded it).
function rowsName(e) {
  return e.rows === "guard window" ? "guard window rows" : "test rows";
}

// The rows and repeats the importance was computed on within its time budget
// (evaluation.permutation_importance_sample; absent before mlserve recorded it).
function importanceSample(e) {
  const s = e.permutation_importance_sample;
  if (!s) return "";
  const budget = s.budget_s === null || s.budget_s === undefined ? "" : ` within ${number(s.budget_s)} s`;
  return `: ${number(s.rows)} rows, ${number(s.repeats)} repeats${budget}`;
}

function trainingText(e) {
  const t = e.training;
  const loss = t.loss === "mse" ? "mean squared error on the standardised target" : "cross-entropy";
  const best = t.best_epoch ? `; the weights of the best epoch (${number(t.best_epoch)}, marked) are kept` : "";
  const online = t.online_updates ? `, then ${number(t.online_updates)} passes of online updates (dots)` : "";
  return `Train and validation loss (${loss}) for each of the ${number(t.epochs)} epochs${best}${online}. Trained on ${t.device} (${number(t.threads)} CPU thread${t.threads === 1 ? "" : "s"}), torch ${t.torch_version}.`;
}

// kind -> [title, description, draw(element, evaluation, version)]; in page order.
const KINDS = {
  training: ["Training curve", trainingText, (el, e) => plots.trainingCurve(el, e.training)],
  predicted_vs_actual: [
    "Predicted vs actual",
    (e) => `${rowsName(e)[0].toUpperCase()}${rowsName(e).slice(1)}${e.predicted_vs_actual.n_total > e.predicted_vs_actual.actual.length ? ` (${number(e.predicted_vs_actual.actual.length)} of ${number(e.predicted_vs_actual.n_total)} shown)` : ""}; on the dashed line, predictions are exact.`,
    (el, e, v) => plots.predictedVsActual(el, e.predicted_vs_actual, v.signature.output.name),
  ],
  residuals: ["Residuals", (e) => `Actual minus predicted, every one of the ${rowsName(e)}.`, (el, e) => plots.residuals(el, e.residuals)],
  confusion_matrix: ["Confusion matrix", () => "Rows: actual class; columns: predicted class.", (el, e) => plots.confusionMatrix(el, e.confusion_matrix)],
  roc: ["ROC curve", (e) => (e.roc.length > 1 ? "One class against the rest, per class." : "Positive class against the other."), (el, e) => plots.roc(el, e.roc)],
  precision_recall: ["Precision-recall", (e) => (e.precision_recall.length > 1 ? "One class against the rest, per class." : "Positive class."), (el, e) => plots.precisionRecall(el, e.precision_recall)],
  permutation_importance: [
    "Permutation importance",
    (e) => `How much the score on the ${rowsName(e)} drops when a feature's values are shuffled (mean ± std over repeats)${importanceSample(e)}.`,
    (el, e) => plots.importance(el, e.permutation_importance),
  ],
  shap_summary: [
    "Feature contributions (SHAP)",
    (e) => `Mean |contribution| of each feature to the model's output (${e.shap_summary.output_space}) on ${e.shap_summary.rows} rows of the ${rowsName(e)}, ${e.shap_summary.method} explainer.`,
    (el, e) => plots.shapSummary(el, e.shap_summary),
  ],
  cv: ["Cross-validation scores", (e) => `Each fold's score (${e.cv.folds} folds).`, (el, e) => plots.cvSpread(el, e.cv)],
};

function present(evaluation, kind) {
  const data = evaluation[kind];
  if (data === undefined || data === null) return false;
  if (Array.isArray(data)) return data.length > 0;
  if (kind === "cv") return (data.folds || 0) > 0;
  return true;
}

export function showEvaluation(container, evaluation, version) {
  const drawn = [];
  const figures = [];
  for (const [kind, [title, describe, draw]] of Object.entries(KINDS)) {
    if (!present(evaluation, kind)) continue;
    const plot = h("div", { class: "plot", "data-plot": kind });
    figures.push(h("figure", {}, h("figcaption", {}, title), h("p", { class: "hint" }, describe(evaluation)), plot));
    drawn.push(() => draw(plot, evaluation, version));
  }
  fill(container, figures.length ? figures : h("p", { class: "muted" }, "Nothing to plot for this version."));
  drawn.forEach((draw) => draw());
}
