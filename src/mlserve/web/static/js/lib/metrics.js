// Which metrics to show, in which order, and how (see docs/api.md, metrics).
export const METRIC_ORDER = ["rmse", "mae", "r2", "accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc", "log_loss", "n_samples"];
export const LOWER_IS_BETTER = new Set(["rmse", "mae", "log_loss"]);

// Scalar metrics of the given versions, in a stable order.
export function metricNames(versions) {
  const names = new Set();
  for (const version of versions) {
    for (const [name, value] of Object.entries(version.metrics || {})) {
      if (value === null || typeof value === "number") names.add(name);
    }
  }
  const known = METRIC_ORDER.filter((name) => names.has(name));
  const others = [...names].filter((name) => !METRIC_ORDER.includes(name)).sort();
  return known.concat(others);
}

// The cross-validation metric shown first: the one the task is judged by.
export function cvMain(version) {
  const cv = version.cv_metrics || {};
  const name = ["r2", "accuracy", "rmse", "f1_macro"].find((metric) => cv[metric]);
  return name ? { name, ...cv[name] } : null;
}
