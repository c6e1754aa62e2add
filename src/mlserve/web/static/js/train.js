// Train: a form built from the dataset's columns and GET /api/v1/algorithms; posts
// POST /api/v1/training-jobs and goes to the job's page. Errors go next to their field.
import { getJson, sendJson, seg } from "./lib/api.js";
import { byId, clearErrors, fill, h, mainData, number, showError } from "./lib/dom.js";
import { paramFields } from "./lib/params.js";

const form = byId("train-form");
const select = { dataset: byId("dataset"), target: byId("target"), task: byId("task"), algorithm: byId("algorithm") };
const formError = byId("train-error");
const algorithmsByTask = new Map();
let dataset = null;
let algorithms = [];
let readParams = () => ({});
let suggestedModelName = "";
// algorithm "auto" (docs/training.md): the server scores a few entries by cross-validation
// and trains the best; it sets the hyper-parameters itself.
const AUTO = "auto";

// The server's rule (docs/api.md, "Task inference"): text, boolean, or an integer
// target with at most 20 distinct values means classification.
function inferTask(column) {
  if (!column) return null;
  if (column.type === "string" || column.type === "boolean") return "classification";
  if (column.type === "integer" && column.unique <= 20) return "classification";
  return "regression";
}

function chosenTask() {
  if (select.task.value !== "auto") return select.task.value;
  const column = dataset ? dataset.columns.find((c) => c.name === select.target.value) : null;
  return inferTask(column);
}

function modelNameFrom(name) {
  const cleaned = name.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 100);
  return cleaned || "model";
}

async function loadDatasets(wanted) {
  const { datasets } = await getJson("/api/v1/datasets", { limit: 1000 });
  fill(select.dataset, h("option", { value: "" }, datasets.length ? "Choose a dataset" : "No dataset: upload one first"));
  for (const item of datasets) {
    select.dataset.append(h("option", { value: item.id, selected: item.id === wanted }, item.name));
  }
}

async function loadDataset(id) {
  dataset = id ? await getJson(`/api/v1/datasets/${seg(id)}`) : null;
  const url = new URL(window.location.href);
  if (id) url.searchParams.set("dataset", id);
  else url.searchParams.delete("dataset");
  window.history.replaceState(null, "", url);
  const columns = dataset ? dataset.columns : [];
  fill(select.target, h("option", { value: "" }, "Choose the column to predict"), columns.map((c) => h("option", { value: c.name }, c.name)));
  fill(
    byId("features"),
    columns.map((column, i) =>
      h(
        "div",
        { class: "check" },
        h("input", { type: "checkbox", id: `feature-${i}`, name: "features", value: column.name, checked: !leftOut(column), "data-default": leftOut(column) ? "off" : "on" }),
        h("label", { for: `feature-${i}` }, column.name),
        // id-like and constant columns start unticked, with the reason (the server leaves them out too).
        leftOut(column) ? h("span", { class: "hint role-reason" }, ` left out by default: ${column.role}, ${column.role_reason}`) : null,
      ),
    ),
  );
  byId("target-hint").textContent = dataset
    ? `The column the model learns to predict (${number(dataset.n_rows)} rows, ${columns.length} columns).`
    : "The column the model learns to predict.";
  const modelName = byId("model_name");
  if (dataset && (!modelName.value || modelName.value === suggestedModelName)) {
    suggestedModelName = modelNameFrom(dataset.name);
    modelName.value = suggestedModelName;
  }
  await targetChanged();
}

function leftOut(column) {
  return column.role === "id" || column.role === "constant";
}

async function targetChanged() {
  for (const box of byId("features").querySelectorAll("input")) {
    const isTarget = box.value === select.target.value;
    box.disabled = isTarget;
    if (isTarget) box.checked = false;
    else if (box.dataset.wasTarget) box.checked = box.dataset.default === "on";
    box.dataset.wasTarget = isTarget ? "yes" : "";
  }
  await taskChanged();
}

async function algorithmsFor(task) {
  if (!algorithmsByTask.has(task)) algorithmsByTask.set(task, getJson("/api/v1/algorithms", { task }).then((body) => body.algorithms));
  return algorithmsByTask.get(task);
}

async function taskChanged() {
  const task = chosenTask();
  const column = dataset ? dataset.columns.find((c) => c.name === select.target.value) : null;
  byId("task-hint").textContent = select.task.value === "auto" && task ? `Inferred from ${column.name}: ${task}.` : "";
  const previous = select.algorithm.value || "gradient_boosting";
  if (!task) {
    algorithms = [];
    fill(select.algorithm, h("option", { value: "" }, "Choose a target first"));
  } else {
    try {
      algorithms = await algorithmsFor(task);
    } catch (error) {
      algorithms = [];
      algorithmsByTask.delete(task);
      byId("error-algorithm").textContent = `The algorithms cannot be listed: ${error.message}`;
    }
    const usable = algorithms.filter((a) => a.available !== false);
    const keep = previous === AUTO || usable.some((a) => a.name === previous) ? previous : usable[0] && usable[0].name;
    // An entry whose optional dependency the server lacks is listed, disabled, with the hint.
    fill(
      select.algorithm,
      h("option", { value: AUTO, selected: keep === AUTO }, "auto (choose by cross-validation)"),
      algorithms.map((a) =>
        h("option", { value: a.name, selected: a.name === keep, disabled: a.available === false }, a.available === false ? `${a.name} (not installed: ${a.install_hint})` : a.name),
      ),
    );
  }
  algorithmChanged();
}

function algorithmChanged() {
  const algorithm = algorithms.find((a) => a.name === select.algorithm.value);
  const auto = select.algorithm.value === AUTO;
  byId("time_budget_s-field").hidden = !auto;
  byId("algorithm-hint").textContent = auto
    ? "Scores a linear model, gradient boosting and a random forest, searches the best one's hyper-parameters if time allows, and trains the winner."
    : algorithm ? `${algorithm.estimator}, ${algorithm.params.length} hyper-parameters` : "";
  const built = paramFields(algorithm ? algorithm.params : []);
  readParams = built.read;
  fill(byId("params"), built.fields.length ? built.fields : h("p", { class: "muted" }, "None to set."));
}

function numberField(id) {
  const input = byId(id);
  if (input.value === "") return undefined;
  const value = Number(input.value);
  return Number.isFinite(value) ? value : input.value; // the server names the field if it is wrong
}

function spec() {
  const boxes = [...byId("features").querySelectorAll("input:not(:disabled)")];
  const chosen = boxes.filter((box) => box.checked).map((box) => box.value);
  const body = {
    dataset_id: select.dataset.value,
    target: select.target.value,
    algorithm: select.algorithm.value,
    model_name: byId("model_name").value.trim(),
    task: select.task.value === "auto" ? null : select.task.value,
    params: readParams(),
    // null: the server's defaults, which are exactly the boxes ticked at first.
    features: boxes.every((box) => box.checked === (box.dataset.default === "on")) ? null : chosen,
    drop_duplicates: byId("drop_duplicates").checked,
    drop_missing_target: byId("drop_missing_target").checked,
  };
  for (const id of ["test_size", "cv_folds", "random_state"]) {
    const value = numberField(id);
    if (value !== undefined) body[id] = value;
  }
  if (body.algorithm === AUTO && numberField("time_budget_s") !== undefined) body.time_budget_s = numberField("time_budget_s");
  return body;
}

async function submit(event) {
  event.preventDefault();
  clearErrors(form);
  const button = byId("train-button");
  button.disabled = true;
  try {
    const job = await sendJson("POST", "/api/v1/training-jobs", spec());
    window.location.assign(`/jobs/${seg(job.id)}`);
  } catch (error) {
    showError(error, formError);
    button.disabled = false;
  }
}

function guard(handler) {
  return (...args) => Promise.resolve(handler(...args)).catch((error) => showError(error, formError));
}

async function main() {
  const wanted = new URLSearchParams(window.location.search).get("dataset") || mainData().datasetId;
  await loadDatasets(wanted);
  await loadDataset(select.dataset.value);
}

select.dataset.addEventListener("change", guard(() => loadDataset(select.dataset.value)));
select.target.addEventListener("change", guard(targetChanged));
select.task.addEventListener("change", guard(taskChanged));
select.algorithm.addEventListener("change", algorithmChanged);
form.addEventListener("submit", submit);
guard(main)();
