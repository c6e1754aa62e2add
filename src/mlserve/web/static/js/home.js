// Home: counts, recent jobs with live status, models in production, service health.
import { ApiError, getJson, request, seg } from "./lib/api.js";
import { byId, fill, h, keyMetricText, modelUrl, number, statusBadge, table, versionUrl, when } from "./lib/dom.js";

const LIST_LIMIT = 1000;
const RECENT = 10;
const ACTIVE = new Set(["queued", "running"]);
const FAST_POLL_MS = 1000;
const SLOW_POLL_MS = 10000;

function count(items) {
  return items.length >= LIST_LIMIT ? `${number(LIST_LIMIT)}+` : number(items.length);
}

async function showHealth() {
  const slot = document.querySelector('[data-testid="health"]');
  let status = "ready";
  let checks = {};
  try {
    checks = (await (await request("/ready")).json()).checks;
  } catch (error) {
    status = "not ready";
    checks = error instanceof ApiError ? error.details : {};
  }
  fill(slot, statusBadge(status === "ready" ? "ready" : "error", { title: status }));
  slot.querySelector(".status").textContent = status;
  const parts = Object.entries(checks || {}).map(([name, value]) => `${name}: ${value}`);
  byId("health-details").textContent = parts.length ? `Checks: ${parts.join(", ")}` : "";
}

function jobsTable(jobs) {
  if (!jobs.length) return h("p", { class: "muted" }, "No training job yet. ", h("a", { href: "/train" }, "Train a model"), ".");
  const rows = jobs.map((job) => [
    h("a", { href: `/jobs/${seg(job.id)}` }, job.id.slice(0, 8)),
    job.model_version ? h("a", { href: versionUrl(job.model_name, job.model_version) }, `${job.model_name} v${job.model_version}`) : job.model_name,
    statusBadge(job.status, { "data-testid": "recent-job-status" }),
    job.stage,
    `${Math.round((job.progress || 0) * 100)} %`,
    when(job.created_at),
  ]);
  return table(["Job", "Model", "Status", "Stage", "Progress", "Created"], rows, { numeric: [4] });
}

async function countJobs() {
  const { jobs } = await getJson("/api/v1/training-jobs", { limit: LIST_LIMIT });
  document.querySelector('[data-testid="count-jobs"]').textContent = count(jobs);
}

async function refreshJobs() {
  const { jobs } = await getJson("/api/v1/training-jobs", { limit: RECENT });
  fill(byId("recent-jobs"), jobsTable(jobs));
  return jobs.some((job) => ACTIVE.has(job.status));
}

function pollJobs() {
  const tick = async () => {
    let active = false;
    try {
      if (!document.hidden) active = await refreshJobs();
    } catch (error) {
      byId("page-error").textContent = error.message;
    }
    window.setTimeout(tick, active ? FAST_POLL_MS : SLOW_POLL_MS);
  };
  return tick();
}

async function showModels() {
  const { models } = await getJson("/api/v1/models");
  document.querySelector('[data-testid="count-models"]').textContent = count(models);
  if (!models.length) {
    fill(byId("model-summary"), h("p", { class: "muted" }, "No model yet."));
    return;
  }
  const shown = models.slice(0, 20);
  const versions = await Promise.all(
    shown.map((model) => {
      const shown = model.aliases.production ?? model.latest_version;
      if (!shown) return null;
      return getJson(`/api/v1/models/${seg(model.name)}/versions/${shown}`).catch(() => null);
    }),
  );
  const rows = shown.map((model, i) => {
    const production = model.aliases.production;
    return [
      h("a", { href: modelUrl(model.name) }, model.name),
      production ? h("a", { href: versionUrl(model.name, production) }, `v${production}`) : h("span", { class: "muted" }, "none"),
      model.latest_version ? `v${model.latest_version}` : "—",
      versions[i] ? `${keyMetricText(versions[i])}${production ? "" : " (latest)"}` : "—",
    ];
  });
  fill(byId("model-summary"), table(["Model", "Production", "Latest", "Key metric"], rows));
}

async function main() {
  const datasets = getJson("/api/v1/datasets", { limit: LIST_LIMIT }).then(({ datasets: items }) => {
    document.querySelector('[data-testid="count-datasets"]').textContent = count(items);
  });
  const results = await Promise.allSettled([datasets, countJobs(), showModels(), showHealth(), pollJobs()]);
  const failed = results.find((result) => result.status === "rejected");
  if (failed) byId("page-error").textContent = failed.reason.message;
}

main();
