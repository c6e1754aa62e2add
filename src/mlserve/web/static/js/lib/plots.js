// Plots drawn by Plotly.js (served by mlserve from the plotly package). Every trace is
// SVG (scatter, bar, box, heatmap), none WebGL. Text from data is escaped: Plotly reads
// a little HTML in labels.

const CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
};
const FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif", size: 13, color: "#1b1f24" };
const ACCENT = "#0b57d0";
const PALETTE = ["#0b57d0", "#c5221f", "#188038", "#b06000", "#8430ce", "#007b83", "#5f6368", "#d01884"];

function plotly() {
  if (!window.Plotly) throw new Error("Plotly.js did not load");
  return window.Plotly;
}

// Plotly renders <br>, <b>, <a> ... in text: data must not be read as markup.
export function text(value) {
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function axis(title, extra = {}) {
  return { title: { text: title }, automargin: true, zeroline: false, gridcolor: "#e3e7eb", ...extra };
}

export function draw(element, traces, layout = {}) {
  const base = {
    font: FONT,
    margin: { l: 56, r: 16, t: 16, b: 48 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    showlegend: false,
    hoverlabel: { font: { family: FONT.family } },
  };
  return plotly().newPlot(element, traces, { ...base, ...layout }, CONFIG);
}

function centers(edges) {
  return edges.slice(0, -1).map((left, i) => (left + edges[i + 1]) / 2);
}

function widths(edges) {
  return edges.slice(0, -1).map((left, i) => edges[i + 1] - left);
}

// {edges: [n+1], counts: [n]} as touching bars.
export function histogram(element, { edges, counts }, xTitle, yTitle = "Rows") {
  const trace = {
    type: "bar",
    x: centers(edges),
    y: counts,
    width: widths(edges),
    marker: { color: ACCENT, line: { color: "#ffffff", width: 1 } },
    hovertemplate: "%{x}<br>%{y} rows<extra></extra>",
  };
  return draw(element, [trace], { xaxis: axis(text(xTitle)), yaxis: axis(yTitle), bargap: 0 });
}

// [{value, count}] as bars, most frequent first.
export function topValues(element, top, xTitle) {
  const trace = {
    type: "bar",
    x: top.map((item) => text(item.value)),
    y: top.map((item) => item.count),
    marker: { color: ACCENT },
    hovertemplate: "%{x}<br>%{y} rows<extra></extra>",
  };
  return draw(element, [trace], { xaxis: axis(text(xTitle), { type: "category" }), yaxis: axis("Rows") });
}

export function predictedVsActual(element, { actual, predicted }, target) {
  const values = actual.concat(predicted);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const points = {
    type: "scatter",
    mode: "markers",
    name: "rows",
    x: actual,
    y: predicted,
    marker: { color: ACCENT, size: 5, opacity: 0.45 },
    hovertemplate: "actual %{x}<br>predicted %{y}<extra></extra>",
  };
  const identity = {
    type: "scatter",
    mode: "lines",
    name: "predicted = actual",
    x: [low, high],
    y: [low, high],
    line: { color: "#c5221f", dash: "dash", width: 2 },
    hoverinfo: "skip",
  };
  return draw(element, [points, identity], {
    xaxis: axis(`Actual ${text(target)}`),
    yaxis: axis(`Predicted ${text(target)}`),
    showlegend: true,
    legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
    margin: { l: 64, r: 16, t: 32, b: 48 },
  });
}

export function residuals(element, data) {
  return histogram(element, data, "Residual (actual − predicted)", "Rows");
}

export function confusionMatrix(element, { labels, matrix }) {
  const names = labels.map((label) => text(label));
  const trace = {
    type: "heatmap",
    x: names,
    y: names,
    z: matrix,
    colorscale: [[0, "#f4f6f8"], [1, "#0b57d0"]],
    showscale: false,
    texttemplate: "%{z}",
    hovertemplate: "actual %{y}<br>predicted %{x}<br>%{z} rows<extra></extra>",
    xgap: 2,
    ygap: 2,
  };
  return draw(element, [trace], {
    xaxis: axis("Predicted", { type: "category", side: "bottom" }),
    yaxis: axis("Actual", { type: "category", autorange: "reversed" }),
  });
}

function curves(element, items, { x, y, score, xTitle, yTitle, chance }) {
  const traces = items.map((item, i) => ({
    type: "scatter",
    mode: "lines",
    name: `${text(item.label)} (${score} ${item[score] === null || item[score] === undefined ? "—" : Number(item[score]).toFixed(3)})`,
    x: item[x],
    y: item[y],
    line: { color: PALETTE[i % PALETTE.length], width: 2 },
  }));
  if (chance) traces.push({ type: "scatter", mode: "lines", name: "chance", x: [0, 1], y: [0, 1], line: { color: "#5f6368", dash: "dot", width: 1 }, hoverinfo: "skip" });
  return draw(element, traces, {
    xaxis: axis(xTitle, { range: [0, 1.02] }),
    yaxis: axis(yTitle, { range: [0, 1.02] }),
    showlegend: true,
    legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
    margin: { l: 56, r: 16, t: 32, b: 48 },
  });
}

export function roc(element, items) {
  return curves(element, items, { x: "fpr", y: "tpr", score: "auc", xTitle: "False positive rate", yTitle: "True positive rate", chance: true });
}

export function precisionRecall(element, items) {
  return curves(element, items, { x: "recall", y: "precision", score: "average_precision", xTitle: "Recall", yTitle: "Precision", chance: false });
}

// [{feature, mean, std}] sorted by mean, largest first: largest at the top.
export function importance(element, rows, limit = 25) {
  const shown = rows.slice(0, limit);
  const trace = {
    type: "bar",
    orientation: "h",
    y: shown.map((row) => text(row.feature)),
    x: shown.map((row) => row.mean),
    error_x: { type: "data", array: shown.map((row) => row.std), visible: true, color: "#5f6368" },
    marker: { color: ACCENT },
    hovertemplate: "%{y}<br>%{x}<extra></extra>",
  };
  element.style.height = `${Math.max(220, 60 + 26 * shown.length)}px`;
  return draw(element, [trace], {
    xaxis: axis("Mean score decrease when shuffled"),
    yaxis: axis("", { type: "category", autorange: "reversed" }),
  });
}

// {folds, <metric>: {mean, std, values}}: one box with its points per metric, each on its own scale.
export function cvSpread(element, cv) {
  const metrics = Object.keys(cv).filter((name) => cv[name] && Array.isArray(cv[name].values));
  const traces = metrics.map((name, i) => ({
    type: "box",
    name: text(name),
    y: cv[name].values,
    boxpoints: "all",
    jitter: 0.3,
    pointpos: 0,
    marker: { color: PALETTE[i % PALETTE.length], size: 7 },
    line: { color: PALETTE[i % PALETTE.length] },
    xaxis: i === 0 ? "x" : `x${i + 1}`,
    yaxis: i === 0 ? "y" : `y${i + 1}`,
    hovertemplate: `${text(name)} %{y}<extra></extra>`,
  }));
  const layout = { grid: { rows: 1, columns: Math.max(1, metrics.length), pattern: "independent" } };
  metrics.forEach((name, i) => {
    layout[i === 0 ? "yaxis" : `yaxis${i + 1}`] = axis("", { automargin: true });
  });
  return draw(element, traces, layout);
}

// Drift: PSI per feature as bars, coloured by level, with the thresholds as dashed lines.
// features: [{name, psi, level, drift}] with a PSI; psi: {moderate, drift_at}.
export function drift(element, features, psi) {
  const colour = { significant: "#c5221f", moderate: "#b06000", stable: ACCENT };
  const trace = {
    type: "bar",
    x: features.map((f) => text(f.name)),
    y: features.map((f) => f.psi),
    marker: { color: features.map((f) => colour[f.level] || ACCENT) },
    hovertemplate: "%{x}<br>PSI %{y:.4f}<extra></extra>",
  };
  const line = (y, dash) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color: "#5f6368", dash, width: 1.5 } });
  const label = (y, words) => ({ xref: "paper", x: 1, y, text: words, showarrow: false, xanchor: "right", yanchor: "bottom", font: { size: 11, color: "#4d5561" } });
  const top = Math.max(psi.drift_at * 1.2, ...features.map((f) => f.psi));
  return draw(element, [trace], {
    xaxis: axis("", { type: "category" }),
    yaxis: axis("PSI", { range: [0, top * 1.05], rangemode: "tozero" }),
    shapes: [line(psi.moderate, "dot"), line(psi.drift_at, "dash")],
    annotations: [label(psi.moderate, `moderate ${psi.moderate}`), label(psi.drift_at, `drift ${psi.drift_at}`)],
  });
}

// A network's training record: train and validation loss per epoch, online update passes
// as dots after them, the best epoch (whose weights were kept) as a dashed line.
export function trainingCurve(element, { curve, best_epoch: best }) {
  const fit = curve.epoch.map((_e, i) => i).filter((i) => !curve.online[i]);
  const online = curve.epoch.map((_e, i) => i).filter((i) => curve.online[i]);
  const pick = (key, rows) => rows.map((i) => curve[key][i]);
  const line = (name, key, colour) => ({
    type: "scatter",
    mode: "lines",
    name,
    x: pick("epoch", fit),
    y: pick(key, fit),
    line: { color: colour, width: 2 },
    hovertemplate: `epoch %{x}<br>${name} %{y:.5g}<extra></extra>`,
  });
  const traces = [line("train loss", "train_loss", ACCENT)];
  if (pick("valid_loss", fit).some((v) => v !== null)) traces.push(line("validation loss", "valid_loss", PALETTE[1]));
  if (online.length) {
    traces.push({
      type: "scatter",
      mode: "markers",
      name: "online update passes",
      x: pick("epoch", online),
      y: pick("train_loss", online),
      marker: { color: PALETTE[2], size: 6 },
      hovertemplate: "pass %{x}<br>train loss %{y:.5g}<extra></extra>",
    });
  }
  const layout = {
    xaxis: axis("Epoch"),
    yaxis: axis("Loss", { type: "log" }),
    showlegend: true,
    legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
    margin: { l: 64, r: 16, t: 32, b: 48 },
  };
  if (best) {
    layout.shapes = [{ type: "line", xref: "x", yref: "paper", x0: best, x1: best, y0: 0, y1: 1, line: { color: "#5f6368", dash: "dash", width: 1.5 } }];
    layout.annotations = [{ xref: "x", yref: "paper", x: best, y: 1, text: `best epoch ${best}`, showarrow: false, xanchor: "left", yanchor: "top", font: { size: 11, color: "#4d5561" } }];
  }
  return draw(element, traces, layout);
}

// Prequential error of an online model's stream ({metric, by_update: [{last_sample_id,
// value, cumulative, first_sample_id, scored_by}]}): per update as markers, cumulative as a line.
export function prequential(element, summary) {
  const updates = summary.by_update;
  const x = updates.map((u) => u.last_sample_id);
  const hover = updates.map((u) => `samples #${u.first_sample_id}–#${u.last_sample_id}<br>scored by ${u.scored_by.map((v) => `v${v}`).join(", ")}<br>made v${u.version}`);
  const perUpdate = {
    type: "scatter",
    mode: "lines+markers",
    name: "per update",
    x,
    y: updates.map((u) => u.value),
    text: hover,
    marker: { color: ACCENT, size: 7 },
    line: { color: ACCENT, width: 1 },
    hovertemplate: `%{text}<br>${text(summary.metric)} %{y}<extra></extra>`,
  };
  const cumulative = {
    type: "scatter",
    mode: "lines",
    name: "cumulative",
    x,
    y: updates.map((u) => u.cumulative),
    line: { color: "#c5221f", dash: "dash", width: 2 },
    hovertemplate: `cumulative ${text(summary.metric)} %{y}<extra></extra>`,
  };
  return draw(element, [perUpdate, cumulative], {
    xaxis: axis("Last sample id of the update"),
    yaxis: axis(`Prequential ${text(summary.metric)}`),
    showlegend: true,
    legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
    margin: { l: 64, r: 16, t: 32, b: 48 },
  });
}

// One explained row ({base_value, output, contributions: {feature: value}}): a waterfall from
// the base value through each feature's contribution (largest first) to the model's output.
export function waterfall(element, row, outputSpace, limit = 15) {
  const entries = Object.entries(row.contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const shown = entries.slice(0, limit);
  const rest = entries.slice(limit).reduce((sum, [, value]) => sum + value, 0);
  if (entries.length > limit) shown.push([`${entries.length - limit} other features`, rest]);
  const trace = {
    type: "waterfall",
    orientation: "h",
    measure: ["absolute", ...shown.map(() => "relative"), "total"],
    y: ["base value", ...shown.map(([feature]) => text(feature)), `output (${outputSpace})`],
    x: [row.base_value, ...shown.map(([, value]) => value), row.output],
    increasing: { marker: { color: "#c5221f" } },
    decreasing: { marker: { color: ACCENT } },
    totals: { marker: { color: "#5f6368" } },
    connector: { line: { color: "#9aa0a6" } },
    hovertemplate: "%{y}<br>%{x}<extra></extra>",
  };
  element.style.height = `${Math.max(240, 80 + 26 * (shown.length + 2))}px`;
  return draw(element, [trace], {
    xaxis: axis(`Model output (${outputSpace})`),
    yaxis: axis("", { type: "category", autorange: "reversed" }),
  });
}

// [{feature, mean_abs}] largest first: mean |SHAP contribution| per feature.
export function shapSummary(element, summary, limit = 25) {
  const shown = summary.features.slice(0, limit);
  const trace = {
    type: "bar",
    orientation: "h",
    y: shown.map((row) => text(row.feature)),
    x: shown.map((row) => row.mean_abs),
    marker: { color: ACCENT },
    hovertemplate: "%{y}<br>%{x}<extra></extra>",
  };
  element.style.height = `${Math.max(220, 60 + 26 * shown.length)}px`;
  return draw(element, [trace], {
    xaxis: axis(`Mean |contribution| (${summary.output_space})`),
    yaxis: axis("", { type: "category", autorange: "reversed" }),
  });
}
