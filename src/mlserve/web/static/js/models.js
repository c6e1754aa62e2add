// Models: name, latest version, aliases and the latest version's key metric.
import { getJson, seg } from "./lib/api.js";
import { byId, fill, h, keyMetricText, modelUrl, table, versionUrl, when } from "./lib/dom.js";

function aliasList(model) {
  const entries = Object.entries(model.aliases || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h("span", { class: "muted" }, "none");
  return entries.map(([alias, version], i) => [i ? ", " : "", h("a", { href: versionUrl(model.name, version) }, `${alias} → v${version}`)]);
}

async function main() {
  const slot = byId("model-list");
  try {
    const { models } = await getJson("/api/v1/models");
    if (!models.length) {
      fill(slot, h("p", {}, "No model yet. ", h("a", { href: "/train" }, "Train one"), "."));
      return;
    }
    const latest = await Promise.all(
      models.map((model) => (model.latest_version ? getJson(`/api/v1/models/${seg(model.name)}/versions/${model.latest_version}`).catch(() => null) : null)),
    );
    const rows = models.map((model, i) => [
      h("a", { href: modelUrl(model.name) }, model.name),
      model.latest_version ? h("a", { href: versionUrl(model.name, model.latest_version) }, `v${model.latest_version}`) : "—",
      aliasList(model),
      latest[i] ? `${keyMetricText(latest[i])} (${latest[i].algorithm})` : "—",
      when(model.updated_at),
    ]);
    fill(slot, table(["Model", "Latest version", "Aliases", "Key metric (latest)", "Updated"], rows));
  } catch (error) {
    fill(slot, h("p", { class: "error-text", role: "alert" }, error.message));
  }
}

main();
