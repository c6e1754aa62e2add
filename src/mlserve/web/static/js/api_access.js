// API access: curl and Python client snippets per model, with an example row taken
// from the training data when it can be read, and a Copy button each.
import { getJson, seg } from "./lib/api.js";
import { byId, fill, h } from "./lib/dom.js";

function placeholder(feature) {
  if (feature.type === "boolean") return false;
  if (feature.type === "string") return feature.categories && feature.categories.length ? feature.categories[0] : "text";
  return 0;
}

async function exampleRow(version) {
  const row = Object.fromEntries(version.signature.inputs.map((feature) => [feature.name, placeholder(feature)]));
  try {
    const preview = await getJson(`/api/v1/datasets/${seg(version.dataset_id)}/preview`, { rows: 1 });
    preview.columns.forEach((name, i) => {
      if (name in row) row[name] = preview.rows[0][i];
    });
  } catch {
    // placeholders it is
  }
  return row;
}

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

function curlSnippet(model, alias, row) {
  const query = alias ? `?alias=${encodeURIComponent(alias)}` : "";
  const url = `${window.location.origin}/api/v1/models/${seg(model.name)}/predict${query}`;
  return [
    `curl -s ${shellQuote(url)} \\`,
    `  -H "Authorization: Bearer $MLSERVE_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d ${shellQuote(JSON.stringify({ instances: [row] }))}`,
  ].join("\n");
}

function pythonValue(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  return JSON.stringify(value);
}

function pythonSnippet(model, alias, row) {
  const fields = Object.entries(row).map(([name, value]) => `    ${JSON.stringify(name)}: ${pythonValue(value)},`);
  return [
    "from mlserve.client import Client",
    "",
    `row = {`,
    ...fields,
    "}",
    `with Client(${JSON.stringify(window.location.origin)}) as client:  # the key: MLSERVE_API_KEY`,
    `    result = client.predict(${JSON.stringify(model.name)}, [row]${alias ? `, alias=${JSON.stringify(alias)}` : ""})`,
    `    print(result["predictions"])`,
  ].join("\n");
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // no clipboard API (a page served over plain HTTP to another host): select the text instead
    const range = document.createRange();
    range.selectNodeContents(button.closest(".snippet-block").querySelector("pre"));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    byId("copy-status").textContent = "Selected: press Ctrl+C to copy.";
    return;
  }
  byId("copy-status").textContent = "Copied.";
}

function snippetBlock(id, title, text) {
  const button = h("button", { type: "button", class: "secondary", "aria-describedby": `${id}-title` }, "Copy");
  button.addEventListener("click", () => copy(text, button));
  return h(
    "div",
    { class: "snippet-block" },
    h("div", { class: "snippet-head" }, h("h3", { id: `${id}-title` }, title), button),
    h("pre", { class: "snippet", id, tabindex: "0", "aria-labelledby": `${id}-title` }, h("code", {}, text)),
  );
}

async function modelSection(model, index) {
  const alias = model.aliases.production ? "production" : null;
  const shown = model.aliases.production ?? model.latest_version;
  const version = await getJson(`/api/v1/models/${seg(model.name)}/versions/${shown}`);
  const row = await exampleRow(version);
  const which = alias ? `the production alias (version ${shown})` : `the latest version (${shown}); set a production alias to pin one`;
  return h(
    "section",
    { id: `model-${model.name}`, "aria-labelledby": `model-${index}-heading` },
    h("h2", { id: `model-${index}-heading` }, model.name),
    h("p", { class: "muted" }, `Predicts with ${which}. Add ?version=N or ?alias=NAME to choose another.`),
    snippetBlock(`curl-${index}`, `curl: ${model.name}`, curlSnippet(model, alias, row)),
    snippetBlock(`python-${index}`, `Python: ${model.name}`, pythonSnippet(model, alias, row)),
  );
}

async function main() {
  const { models } = await getJson("/api/v1/models");
  const usable = models.filter((model) => model.latest_version);
  const sections = await Promise.all(usable.map((model, i) => modelSection(model, i)));
  fill(byId("snippets"), sections.length ? sections : h("p", { class: "muted" }, "No model yet: snippets appear here once one is trained."));
  if (window.location.hash) {
    const target = document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
    if (target) target.scrollIntoView();
  }
}

main().catch((error) => {
  byId("page-error").textContent = error.message;
});
