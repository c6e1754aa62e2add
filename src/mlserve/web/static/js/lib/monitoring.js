// A version's live metrics (from feedback) and input drift, from
// GET /api/v1/models/<name>/versions/<v>/live-metrics and .../drift.
import { getJson } from "./api.js";
import { fill, h, number, table, when } from "./dom.js";
import { metricNames } from "./metrics.js";
import * as plots from "./plots.js";

function percent(value) {
  return value === null || value === undefined ? "—" : `${number(100 * value)} %`;
}

// Live metrics of `version` over the most recent `window` rows with feedback, beside the
// metrics recorded when the version was registered (test split or guard window).
// `isCurrent()` false once the answer arrives: a newer request replaced this one.
export async function showLiveMetrics(container, versionPath, version, window, isCurrent = () => true) {
  const live = await getJson(`${versionPath}/live-metrics`, { window });
  if (!isCurrent()) return null;
  if (!live.metrics) {
    fill(
      container,
      h(
        "p",
        { class: "muted", "data-testid": "live-empty" },
        `No feedback yet for version ${version.version}: there is nothing to measure. Every prediction answer carries a prediction_id; `,
        h("code", {}, "POST /api/v1/predictions/{id}/feedback"),
        " with the true values makes them count here (only logged predictions can receive feedback).",
      ),
    );
    return live;
  }
  const names = metricNames([{ metrics: live.metrics }]).filter((name) => name !== "n_samples");
  const recorded = version.online ? "At registration (guard window)" : "At training (test split)";
  const rows = names.map((name) => [name, number(live.metrics[name]), number((version.metrics || {})[name] ?? null)]);
  const span = live.from === live.to ? when(live.to) : `${when(live.from)} to ${when(live.to)}`;
  fill(
    container,
    h(
      "p",
      { "data-testid": "live-rows" },
      h("strong", {}, number(live.n_samples)),
      ` rows with feedback (the most recent of at most ${number(live.window)}), feedback received ${span}.`,
    ),
    table(["Metric", "Live", recorded], rows, { numeric: [1, 2] }),
  );
  container.querySelector("table").setAttribute("data-testid", "live-metrics");
  return live;
}

function flags(feature) {
  const found = [];
  if (feature.drift) found.push(h("span", { class: "badge badge-drift" }, "PSI drift"));
  if (feature.ks_drift) found.push(h("span", { class: "badge badge-drift" }, "KS drift"));
  return found.length ? found : h("span", { class: "muted" }, "—");
}

function kind(feature) {
  if (feature.kind !== "categorical" || feature.unseen_share === null || feature.unseen_share === undefined) return feature.kind;
  return `categorical (${percent(feature.unseen_share)} unseen)`;
}

function level(feature) {
  return feature.level ? h("span", { class: `level level-${feature.level}` }, feature.level) : "—";
}

function thresholdsList(thresholds) {
  const psi = thresholds.psi;
  const ks = thresholds.ks;
  return h(
    "dl",
    { class: "pairs thresholds", "data-testid": "drift-thresholds" },
    h("dt", {}, "PSI"),
    h("dd", {}, `stable below ${psi.moderate}, moderate from ${psi.moderate}, significant from ${psi.significant}; flagged as drift from ${psi.drift_at}. Source: ${psi.source}.`),
    h("dt", {}, "KS"),
    h("dd", {}, `numeric features, flagged when p < ${ks.alpha}. Source: ${ks.source}.`),
    h("dt", {}, "Minimum window"),
    h("dd", {}, `${number(thresholds.min_window_rows)} rows: with fewer, nothing is flagged.`),
  );
}

// PSI and KS of the model's most recent `window` input rows (`source`: logged predictions
// or stored samples) against the version's reference statistics.
export async function showDrift(container, versionPath, window, source, isCurrent = () => true) {
  const report = await getJson(`${versionPath}/drift`, { window, source });
  if (!isCurrent()) return null;
  const what = source === "samples" ? "stored samples" : "logged prediction rows";
  const rows = report.window.rows;
  const thresholds = report.thresholds;
  if (!report.enough_rows) {
    fill(
      container,
      h(
        "p",
        { class: "muted", "data-testid": "drift-empty" },
        `${rows ? `Only ${number(rows)}` : "No"} ${what} in the window: drift is measured from ${number(thresholds.min_window_rows)} rows. `,
        source === "samples" ? "" : "Predictions are logged at the service's sample rate (prediction_log_sample_rate).",
      ),
      thresholdsList(thresholds),
    );
    return report;
  }
  const names = Object.keys(report.features);
  const features = names.map((name) => ({ name, ...report.features[name] }));
  const body = features.map((f) => [
    h("code", {}, f.name),
    kind(f),
    number(f.psi),
    level(f),
    number(f.ks_statistic ?? null),
    number(f.ks_pvalue ?? null),
    percent(f.missing ?? null),
    flags(f),
  ]);
  const drifted = report.drifted.length;
  const plotted = features.filter((f) => typeof f.psi === "number");
  const plot = h("div", { class: "plot", "data-plot": "drift" });
  fill(
    container,
    h(
      "p",
      { "data-testid": "drift-summary" },
      h("strong", {}, `${drifted} of ${names.length}`),
      ` features flagged. Window: the most recent ${number(rows)} ${what} (of ${number(report.window.requested)} asked for), against ${number(report.reference_rows)} training rows.`,
    ),
    table(["Feature", "Kind", "PSI", "Level", "KS statistic", "KS p-value", "Missing", "Flag"], body, { numeric: [2, 4, 5, 6] }),
    plotted.length ? h("figure", {}, h("figcaption", {}, "PSI per feature"), h("p", { class: "hint" }, "Dotted line: moderate shift; dashed line: drift."), plot) : null,
    thresholdsList(thresholds),
  );
  container.querySelector("table").setAttribute("data-testid", "drift-table");
  for (const row of container.querySelectorAll("tbody tr")) {
    if (row.querySelector(".badge-drift")) row.classList.add("flagged");
  }
  if (plotted.length) plots.drift(plot, plotted, thresholds.psi);
  return report;
}
