// The versions of an alias's traffic policy compared (GET .../aliases/<alias>/comparison):
// a table, and bar plots of requests and errors, latency p50/p99, agreement with the
// primary and the key live metric.
import { getJson, seg } from "./lib/api.js";
import { byId, fill, mainData, number, showError, table } from "./lib/dom.js";
import { draw, text } from "./lib/plots.js";

const { modelName, alias } = mainData();

function policyText(found) {
  const policy = found.policy;
  if (!policy) return `Plain alias: version ${found.primary} answers every request.`;
  const parts = policy.split.map((arm) => `v${arm.version} answers ${number(arm.weight * 100)} %`);
  if (policy.shadow.length) parts.push(`shadows: ${policy.shadow.map((v) => `v${v}`).join(", ")}`);
  if (policy.auto) parts.push(`automatic rule after ${policy.auto.min_feedback} rows with feedback, tolerance ${policy.auto.tolerance}`);
  return `Primary v${found.primary}; ${parts.join("; ")}. Since ${found.since}.`;
}

function agreementOf(v) {
  const a = v.agreement;
  return a.label_agreement ?? a.mean_abs_difference ?? null;
}

function bars(element, names, series, title) {
  const traces = series.map(([name, values]) => ({ type: "bar", name, x: names, y: values, hovertemplate: "%{x}<br>%{y}<extra></extra>" }));
  return draw(element, traces, { barmode: "group", showlegend: series.length > 1, xaxis: { type: "category" }, yaxis: { title: { text: title }, automargin: true } });
}

async function main() {
  try {
    const found = await getJson(`/api/v1/models/${seg(modelName)}/aliases/${seg(alias)}/comparison`);
    byId("policy").textContent = policyText(found);
    const versions = found.versions;
    const names = versions.map((v) => text(`v${v.version} (${v.role})`));
    const metric = found.metric;
    const agreementName = found.task === "classification" ? "Label agreement" : "Mean |difference|";
    fill(byId("versions"), table(
      ["Version", "Role", "Share", "Requests", "Errors", "Dropped", "p50 ms", "p99 ms", agreementName, `Live ${metric}`, "Feedback rows"],
      versions.map((v) => [`v${v.version}`, v.role, number(v.weight), number(v.requests), number(v.errors), number(v.dropped), number(v.latency_p50_ms), number(v.latency_p99_ms), number(agreementOf(v)), number(v.live.metrics ? v.live.metrics[metric] : null), number(v.live.n_samples)]),
      { caption: `Versions of ${alias}`, numeric: [2, 3, 4, 5, 6, 7, 8, 9, 10] },
    ));
    const plot = (kind) => document.querySelector(`div.plot[data-plot=${kind}]`);
    bars(plot("requests"), names, [["requests", versions.map((v) => v.requests)], ["errors", versions.map((v) => v.errors)]], "requests");
    bars(plot("latency"), names, [["p50", versions.map((v) => v.latency_p50_ms)], ["p99", versions.map((v) => v.latency_p99_ms)]], "ms");
    bars(plot("agreement"), names, [[agreementName, versions.map(agreementOf)]], agreementName);
    bars(plot("live"), names, [[metric, versions.map((v) => (v.live.metrics ? v.live.metrics[metric] : null))]], metric);
  } catch (error) {
    showError(error, byId("page-error"));
  }
}

main();
