// Predict: one link per model to its prediction page.
import { getJson } from "./lib/api.js";
import { byId, fill, h } from "./lib/dom.js";

function defaultVersion(model) {
  if (model.aliases && model.aliases.production) return `production → v${model.aliases.production}`;
  return model.latest_version ? `latest, v${model.latest_version}` : "no version";
}

async function main() {
  const slot = byId("model-choices");
  try {
    const { models } = await getJson("/api/v1/models");
    if (!models.length) {
      fill(slot, h("p", {}, "No model yet. ", h("a", { href: "/train" }, "Train one"), " first."));
      return;
    }
    const items = models.map((model) =>
      h("li", {}, h("a", { href: `/models/${encodeURIComponent(model.name)}/predict` }, model.name), h("span", { class: "muted" }, ` (${defaultVersion(model)})`)),
    );
    fill(slot, h("ul", { class: "model-choices" }, items));
  } catch (error) {
    fill(slot, h("p", { class: "error-text", role: "alert" }, error.message));
  }
}

main();
