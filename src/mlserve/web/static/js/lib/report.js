// A training job's report (job and version pages): the columns it used or left out and
// why, how each feature is encoded, and the leaderboard of an algorithm "auto" job.
import { cellValue, h, number, table } from "./dom.js";

export function columnsTable(report) {
  const columns = (report && report.columns) || [];
  if (!columns.length) return h("p", { class: "muted" }, "No column decisions recorded.");
  const encoding = (report && report.encoding) || {};
  const rows = columns.map((c) => [h("code", {}, c.name), c.role, c.used ? "used" : "left out", c.reason || "", encoding[c.name] || ""]);
  return table(["Column", "Role", "Used", "Reason", "Encoding"], rows, { caption: "Id-like and constant columns are left out unless features are named." });
}

export function leaderboardTable(report) {
  const board = (report && report.leaderboard) || [];
  if (!board.length) return null;
  const note = (e) => [e.rank === 1 ? "trained" : "", e.tuned ? "searched by successive halving" : "", e.skipped ? `skipped: ${e.skipped}` : ""].filter(Boolean).join("; ");
  const rows = board.map((e) => [String(e.rank), h("code", {}, e.algorithm), cellValue(e.params), number(e.cv_mean), number(e.cv_std), number(e.fit_seconds), note(e)]);
  const metric = board[0].metric;
  return h("div", { "data-testid": "leaderboard" }, table(["Rank", "Algorithm", "Parameters", `CV ${metric} mean`, "CV std", "Fit (s)", "Note"], rows, { numeric: [0, 3, 4, 5] }));
}
