// Inputs for an estimator's hyper-parameters, from GET /api/v1/algorithms:
// {name, default, type, items, choices, minimum, maximum, exclusive_minimum, exclusive_maximum,
// nullable}; an "array" of integer items (hidden_layer_sizes) is typed as "256, 128".
import { h } from "./dom.js";

function bound(value, infinite) {
  return value === null || value === undefined ? infinite : String(value);
}

export function rangeText(param) {
  if (param.minimum == null && param.maximum == null) return "";
  const left = param.minimum == null || param.exclusive_minimum ? "(" : "[";
  const right = param.maximum == null || param.exclusive_maximum ? ")" : "]";
  return `${left}${bound(param.minimum, "−∞")}, ${bound(param.maximum, "∞")}${right}`;
}

function show(value) {
  if (value === null || value === undefined) return "None";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function hintText(param) {
  const parts = [`default ${show(param.default)}`];
  const range = rangeText(param);
  if (param.type === "array") parts.push(`comma-separated ${param.items || "value"}s${range ? `, each in ${range}` : ""}`);
  else if (range) parts.push(`range ${range}`);
  if (param.nullable && param.type !== "boolean" && !param.choices) parts.push("empty: None");
  return parts.join(" · ");
}

function choicesSelect(id, param, options) {
  const select = h("select", { id, name: param.name });
  options.forEach((value, index) => {
    select.append(h("option", { value: String(index), selected: JSON.stringify(value) === JSON.stringify(param.default) }, show(value)));
  });
  select.read = () => options[Number(select.value)];
  return select;
}

// "256, 128" -> [256, 128]; anything else is sent as typed, for the server to name the field.
function arrayControl(id, param) {
  const input = h("input", { id, name: param.name, type: "text", inputmode: "numeric", value: param.default.join(", "), placeholder: "e.g. 256, 128" });
  input.read = () => {
    const parts = input.value.split(/[\s,]+/).filter((part) => part !== "");
    const values = parts.map(Number);
    return parts.length && values.every(Number.isInteger) ? values : input.value;
  };
  return input;
}

function control(id, param) {
  if (param.type === "array" && Array.isArray(param.default)) return arrayControl(id, param);
  if (param.choices && param.choices.length) {
    const options = [...param.choices];
    if ((param.nullable || param.default === null) && !options.includes(null)) options.push(null);
    if (!options.some((value) => JSON.stringify(value) === JSON.stringify(param.default))) options.unshift(param.default);
    return choicesSelect(id, param, options);
  }
  if (param.type === "boolean") {
    const options = param.nullable || param.default === null ? [true, false, null] : [true, false];
    return choicesSelect(id, param, options);
  }
  if (param.type === "number" || param.type === "integer") {
    const input = h("input", {
      id,
      name: param.name,
      type: "number",
      step: param.type === "integer" ? "1" : "any",
      min: param.minimum ?? null,
      max: param.maximum ?? null,
      value: typeof param.default === "number" ? String(param.default) : null,
      placeholder: param.default === null ? "None" : null,
    });
    input.read = () => {
      if (input.value === "") return param.nullable || param.default === null ? null : param.default;
      const value = Number(input.value);
      return Number.isFinite(value) ? value : input.value;
    };
    return input;
  }
  const input = h("input", { id, name: param.name, type: "text", value: typeof param.default === "string" ? param.default : null, placeholder: param.default === null ? "None" : null });
  input.read = () => (input.value === "" && (param.nullable || param.default === null) ? null : input.value);
  return input;
}

// One labelled field per parameter; returns {element, read()} with read() giving the
// parameters that differ from their defaults.
export function paramFields(params) {
  const controls = [];
  const fields = params.map((param) => {
    const id = `param-${param.name}`;
    const input = control(id, param);
    input.setAttribute("aria-describedby", `${id}-hint error-params.${param.name}`);
    controls.push({ param, input });
    return h(
      "div",
      { class: "field" },
      h("label", { for: id }, param.name),
      input,
      h("p", { class: "hint", id: `${id}-hint` }, hintText(param)),
      h("p", { class: "field-error", id: `error-params.${param.name}`, "data-for": id, role: "alert" }),
    );
  });
  const read = () => {
    const chosen = {};
    for (const { param, input } of controls) {
      const value = input.read();
      if (JSON.stringify(value) !== JSON.stringify(param.default)) chosen[param.name] = value;
    }
    return chosen;
  };
  return { fields, read };
}
