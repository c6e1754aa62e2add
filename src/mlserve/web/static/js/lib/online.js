// Online learning in the UI: a version's update lineage and guard decision (the version's
// `online` field), and a model's online state with the prequential error of its stream
// (GET /api/v1/models/<name>/online).
import { fill, h, number, statusBadge, table, versionUrl, when } from "./dom.js";
import * as plots from "./plots.js";

export function pairs(entries) {
  return h("dl", { class: "pairs" }, entries.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function sampleRange(first, last, count) {
  return `samples #${number(first)} to #${number(last)} (${number(count)})`;
}

function unseenText(unseen) {
  const entries = Object.entries(unseen || {}).filter(([, count]) => count > 0);
  if (!entries.length) return "none";
  return entries.map(([feature, count]) => `${feature}: ${number(count)}`).join(", ");
}

// Lineage rows of a version made by an online update.
export function onlineLineage(name, version) {
  const online = version.online;
  return [
    ["Made by", "an online update (partial_fit on stored samples)"],
    ["Parent version", h("a", { href: versionUrl(name, online.parent_version), "data-testid": "parent-version" }, `v${online.parent_version}`)],
    ["Lineage root", h("a", { href: versionUrl(name, online.root_version) }, `v${online.root_version}`)],
    ["Samples consumed", sampleRange(online.first_sample_id, online.last_sample_id, online.n_samples)],
    ...(online.n_held_out === undefined
      ? []
      : [
          ["Held out (never learned)", `${number(online.n_held_out)}: kept for the guard's older samples`],
          ["Replayed", `${number(online.n_replayed)} rows from the reservoir, ${number(online.passes)} passes`],
        ]),
    ...(online.prequential ? [["Prequential " + online.prequential.metric, `${number(online.prequential.value)} on the samples it consumed, before learning them`]] : []),
    ["Unseen categories", unseenText(online.unseen_categories)],
  ];
}

// The sets the guard judged (decisions recorded before there were sets: the window alone).
function guardSets(guard) {
  if (guard.sets) return guard.sets;
  return [{ name: "guard window", n_samples: guard.window.n_samples, candidate: guard.candidate, production: guard.production, judged: true, passed: guard.passed }];
}

function verdict(set) {
  if (!set.judged) return "not judged (too few rows)";
  return set.passed ? "no worse" : "worse";
}

// The guard's decision: status, reason, both versions' metric on the guard window.
export function guardDecision(name, version) {
  const online = version.online;
  const guard = online.guard;
  const window = guard.window;
  return [
    h("p", {}, statusBadge(online.status, { "data-testid": "guard-status" }), " ", h("span", { "data-testid": "guard-reason" }, online.reason)),
    table(
      [
        "Rows",
        "Count",
        `v${version.version} (this version)`,
        h("a", { href: versionUrl(name, guard.production_version) }, `v${guard.production_version} (production then)`),
        h("a", { href: versionUrl(name, online.root_version) }, `v${online.root_version} (lineage root)`),
        "Verdict",
      ],
      guardSets(guard).map((set) => [set.name, number(set.n_samples), number(set.candidate), number(set.production), number(set.root ?? null), verdict(set)]),
      { numeric: [1, 2, 3, 4], caption: `${guard.metric} on each set of rows neither version learned from; the lineage root's is shown, not judged` },
    ),
    pairs([
      ["Guard window", sampleRange(window.first_sample_id, window.last_sample_id, window.n_samples)],
      ["Tolerance", `${number(guard.tolerance * 100)} % of production's ${guard.metric}`],
      ["Passed", guard.passed ? "yes: production moved to this version" : "no: kept as a candidate, production unchanged"],
    ]),
    h("p", { class: "hint" }, "Rolling back, or promoting a candidate, is setting the production alias (above)."),
  ];
}

// A model's online state, and the versions the guard kept as candidates.
export function onlineState(name, state, versions) {
  const head = versions.find((v) => v.version === state.head_version);
  const candidates = versions.filter((v) => v.online && v.online.status === "candidate");
  const parts = [];
  if (!state.incremental) {
    parts.push(
      h(
        "p",
        { "data-testid": "online-not-incremental" },
        `This model's algorithm (${head ? head.algorithm : "?"}) cannot learn incrementally: samples sent to it are stored, and a retrain (POST /api/v1/models/${name}/retrain) trains a new version on the dataset plus them.`,
      ),
    );
    if (!state.samples) return parts; // nothing stored: no state to show
  }
  parts.push(
    pairs([
      ["Learns incrementally", state.incremental ? "yes (partial_fit)" : "no"],
      ["Head version", h("a", { href: versionUrl(name, state.head_version), "data-testid": "online-head" }, `v${state.head_version}`)],
      ["Consumed up to", state.cursor ? `sample #${number(state.cursor)}` : "none yet"],
      ["Samples stored", number(state.samples)],
      ["Waiting", h("span", { "data-testid": "online-pending" }, number(state.pending))],
      ["Last update", state.updated_at ? when(state.updated_at) : "none yet"],
      ["Last error", state.last_error ? h("span", { class: "error-text" }, state.last_error) : "none"],
      ["Running now", (state.updates_running || []).length
        ? (state.updates_running || []).map((run) => `since ${when(run.started_at)} (worker ${run.worker_id})`).join("; ")
        : "no update"],
    ]),
  );
  if (candidates.length) {
    parts.push(
      h("h3", {}, "Candidates"),
      h("p", { class: "hint" }, "Versions made by updates that did not pass the guard: kept, not served unless asked for by version."),
      table(
        ["Version", "Parent", "Reason"],
        candidates.map((v) => [h("a", { href: versionUrl(name, v.version) }, `v${v.version}`), `v${v.online.parent_version}`, v.online.reason]),
      ),
    );
  } else if (versions.some((v) => v.online)) {
    parts.push(h("p", { class: "muted" }, "No candidates: every online update so far passed the guard."));
  }
  return parts;
}

// The prequential error of the stream: each sample predicted by the version live when it
// arrived, before any update learned it; per update (a window of the stream) and per version.
function prequentialPart(summary) {
  if (!summary) return { parts: [h("p", { class: "muted", "data-testid": "prequential-empty" }, "No prequential error yet: it is measured by the first online update.")], plot: null };
  const plot = h("div", { class: "plot", "data-plot": "prequential" });
  const parts = [
    h("h3", {}, "Prequential error"),
    h(
      "p",
      { "data-testid": "prequential-summary" },
      `${summary.metric} ${number(summary.value)} over ${number(summary.n_samples)} samples, each predicted by the version live when it arrived, before any update learned it (no feedback needed).`,
    ),
    h("figure", {}, h("figcaption", {}, `Prequential ${summary.metric} per update and cumulative, by the last sample id of each update`), plot),
    table(
      ["Scored by", "Samples", summary.metric],
      summary.by_version.map((entry) => [`v${entry.version}`, number(entry.n_samples), number(entry.value)]),
      { numeric: [1, 2], caption: "Per version live when the samples arrived" },
    ),
  ];
  return { parts, plot };
}

export function renderOnlineState(container, name, state, versions) {
  const prequential = state.incremental ? prequentialPart(state.prequential) : { parts: [], plot: null };
  fill(container, onlineState(name, state, versions), prequential.parts);
  if (prequential.plot) plots.prequential(prequential.plot, state.prequential);
}
