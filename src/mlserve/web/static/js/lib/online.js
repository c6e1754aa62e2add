// Online learning in the UI: a version's update lineage and guard decision (the version's
// `online` field), and a model's online state (GET /api/v1/models/<name>/online).
import { fill, h, number, statusBadge, table, versionUrl, when } from "./dom.js";

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
    ["Samples applied", sampleRange(online.first_sample_id, online.last_sample_id, online.n_samples)],
    ["Unseen categories", unseenText(online.unseen_categories)],
  ];
}

// The guard's decision: status, reason, both versions' metric on the guard window.
export function guardDecision(name, version) {
  const online = version.online;
  const guard = online.guard;
  const window = guard.window;
  return [
    h("p", {}, statusBadge(online.status, { "data-testid": "guard-status" }), " ", h("span", { "data-testid": "guard-reason" }, online.reason)),
    table(
      ["Version", `${guard.metric} on the guard window`],
      [
        [`v${version.version} (this version)`, number(guard.candidate)],
        [h("a", { href: versionUrl(name, guard.production_version) }, `v${guard.production_version} (production then)`), number(guard.production)],
      ],
      { numeric: [1] },
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
      ["Applied up to", state.cursor ? `sample #${number(state.cursor)}` : "none yet"],
      ["Samples stored", number(state.samples)],
      ["Waiting", h("span", { "data-testid": "online-pending" }, number(state.pending))],
      ["Last update", state.updated_at ? when(state.updated_at) : "none yet"],
      ["Last error", state.last_error ? h("span", { class: "error-text" }, state.last_error) : "none"],
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

export function renderOnlineState(container, name, state, versions) {
  fill(container, onlineState(name, state, versions));
}
