// Inputs for a model's signature: one labelled field per feature
// ({name, type, nullable, categories?}); read() gives one instance for the predict API.
import { h } from "./dom.js";

function control(id, feature) {
  const required = !feature.nullable;
  if (feature.type === "boolean") {
    const options = [h("option", { value: "" }, feature.nullable ? "(missing)" : "Choose"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false")];
    return h("select", { id, name: feature.name, required }, options);
  }
  if (feature.type === "string" && feature.categories && feature.categories.length) {
    const options = [h("option", { value: "" }, feature.nullable ? "(missing)" : "Choose a value")];
    for (const category of feature.categories) options.push(h("option", { value: category }, category));
    return h("select", { id, name: feature.name, required }, options);
  }
  if (feature.type === "number" || feature.type === "integer") {
    return h("input", { id, name: feature.name, type: "number", step: feature.type === "integer" ? "1" : "any", required, inputmode: "decimal" });
  }
  return h("input", { id, name: feature.name, type: "text", required, autocomplete: "off" });
}

function valueOf(input, feature) {
  const text = input.value;
  if (text === "") return feature.type === "string" && !feature.nullable && input.tagName === "INPUT" ? "" : null;
  if (feature.type === "boolean") return text === "true";
  if (feature.type === "number" || feature.type === "integer") {
    const value = Number(text);
    return Number.isFinite(value) ? value : text; // the API names the field if it is wrong
  }
  return text;
}

export function featureFields(inputs) {
  const controls = inputs.map((feature, i) => ({ feature, input: control(`feature-${i}`, feature) }));
  const fields = controls.map(({ feature, input }) => {
    const hint = [feature.type, feature.nullable ? "may be empty" : null].filter(Boolean).join(" · ");
    input.setAttribute("aria-describedby", `${input.id}-hint error-${feature.name}`);
    return h(
      "div",
      { class: "field" },
      h("label", { for: input.id }, feature.name),
      input,
      h("p", { class: "hint", id: `${input.id}-hint` }, hint),
      h("p", { class: "field-error", id: `error-${feature.name}`, "data-for": input.id, role: "alert" }),
    );
  });
  const read = () => Object.fromEntries(controls.map(({ feature, input }) => [feature.name, valueOf(input, feature)]));
  const set = (values) => {
    for (const { feature, input } of controls) {
      if (!(feature.name in values)) continue;
      const value = values[feature.name];
      input.value = value === null || value === undefined ? "" : String(value);
    }
  };
  return { fields, read, set };
}
