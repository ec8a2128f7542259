// The API reference: each path and method of /api/openapi.json with its summary, parameters and
// request body. Text only (textContent): nothing the schema holds is ever read as HTML.
"use strict";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function schemaName(schema, spec) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return `array of ${schemaName(schema.items, spec)}`;
  return schema.type || "";
}

function fields(schema, spec) {
  const resolved = schema && schema.$ref ? spec.components.schemas[schema.$ref.split("/").pop()] : schema;
  return resolved && resolved.properties ? Object.entries(resolved.properties) : [];
}

function render(spec) {
  const root = document.getElementById("endpoints");
  for (const [path, methods] of Object.entries(spec.paths || {})) {
    for (const [method, operation] of Object.entries(methods)) {
      const section = element("section", undefined, "endpoint");
      section.append(element("h2", `${method.toUpperCase()} ${path}`));
      if (operation.summary) section.append(element("p", operation.summary));
      if (operation.description) section.append(element("p", operation.description));
      const list = element("ul");
      for (const parameter of operation.parameters || []) {
        list.append(element("li", `${parameter.name} (${parameter.in}, ${schemaName(parameter.schema, spec)})`));
      }
      const body = operation.requestBody && operation.requestBody.content;
      for (const [type, content] of Object.entries(body || {})) {
        list.append(element("li", `body: ${type} ${schemaName(content.schema, spec)}`));
        for (const [name, field] of fields(content.schema, spec)) {
          list.append(element("li", `  ${name}: ${schemaName(field, spec)}${field.description ? " — " + field.description : ""}`));
        }
      }
      if (list.children.length) section.append(list);
      root.append(section);
    }
  }
}

fetch("/api/openapi.json")
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error(response.statusText))))
  .then(render)
  .catch((error) => {
    const box = document.getElementById("error");
    box.textContent = `cannot read the API description: ${error.message}`;
    box.hidden = false;
  });
