// A training job: polls GET /api/v1/training-jobs/<id> every 500 ms until it ends.
// Every element keeps its size, so updates do not move the page.
import { getJson, sendJson, seg } from "./lib/api.js";
import { byId, cellValue, fill, h, mainData, table, versionUrl, when } from "./lib/dom.js";
import { columnsTable, leaderboardTable } from "./lib/report.js";

const POLL_MS = 500;
const FINAL = new Set(["succeeded", "failed", "cancelled"]);
let specShown = false;

function seconds(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return ` · ${((end - new Date(job.started_at)) / 1000).toFixed(1)} s`;
}

function showSpec(job) {
  const rows = Object.entries(job.spec || {}).map(([name, value]) => [h("code", {}, name), cellValue(value)]);
  rows.push([h("code", {}, "created_at"), when(job.created_at)]);
  fill(byId("job-spec"), table(["Field", "Value"], rows));
  specShown = true;
}

function show(job) {
  const percent = Math.round(100 * (job.progress || 0));
  const meter = byId("job-progress");
  meter.setAttribute("aria-valuenow", String(percent));
  meter.setAttribute("aria-valuetext", `${percent} %, ${job.stage}`);
  const fillBar = byId("job-progress-fill");
  fillBar.style.width = `${percent}%`;
  fillBar.classList.toggle("failed", job.status === "failed");
  fillBar.classList.toggle("succeeded", job.status === "succeeded");
  const status = document.querySelector('[data-testid="job-status"]');
  status.textContent = job.status;
  status.className = `status status-${job.status}`;
  byId("job-percent").textContent = `${percent} %${seconds(job)}`;
  byId("job-stage").textContent = job.stage;
  byId("job-error").textContent = job.error || "";
  byId("job-cancel-line").hidden = FINAL.has(job.status);
  if (job.status === "succeeded" && job.model_version) {
    fill(byId("job-result"), h("a", { class: "button", href: versionUrl(job.model_name, job.model_version) }, "Open model version"));
  }
  if (!specShown) showSpec(job);
  fill(byId("job-columns"), columnsTable(job.report));
  fill(byId("job-leaderboard"), leaderboardTable(job.report));
}

async function poll(jobId) {
  try {
    const job = await getJson(`/api/v1/training-jobs/${seg(jobId)}`);
    show(job);
    if (FINAL.has(job.status)) return;
  } catch (error) {
    byId("job-error").textContent = `Cannot read the job: ${error.message}`;
    if (error.status === 404 || error.status === 403) return;
  }
  window.setTimeout(() => poll(jobId), POLL_MS);
}

async function cancel(jobId) {
  const button = byId("job-cancel");
  button.disabled = true;
  try {
    show(await sendJson("POST", `/api/v1/training-jobs/${seg(jobId)}/cancel`, {}));
  } catch (error) {
    byId("job-error").textContent = `Cannot cancel the job: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

byId("job-cancel").addEventListener("click", () => cancel(mainData().jobId));
poll(mainData().jobId);
