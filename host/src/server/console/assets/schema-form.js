// Form fields generated from a JSON Schema (a loader's selector or a
// formatter's options). Simple fields get real inputs; anything this file
// does not understand gets a JSON textarea, so every plugin gets a form.
// Values are built with the DOM API only: schema text never becomes markup.
"use strict";

(function () {
  var counter = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        if (attrs[key] !== undefined && attrs[key] !== null && attrs[key] !== false) {
          node.setAttribute(key, attrs[key] === true ? "" : String(attrs[key]));
        }
      });
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Follows a local "$ref" (#/$defs/X, #/definitions/X) against the root.
  function resolve(schema, root, depth) {
    depth = depth || 0;
    if (!schema || typeof schema !== "object" || depth > 16) return schema;
    if (typeof schema.$ref === "string" && schema.$ref.indexOf("#/") === 0) {
      var target = root;
      schema.$ref.slice(2).split("/").forEach(function (part) {
        part = part.replace(/~1/g, "/").replace(/~0/g, "~");
        target = target && typeof target === "object" ? target[part] : undefined;
      });
      if (target && typeof target === "object") {
        var merged = Object.assign({}, target, schema);
        delete merged.$ref;
        return resolve(merged, root, depth + 1);
      }
    }
    return schema;
  }

  function isNullSchema(s) {
    return s && (s.type === "null" || (s.const === null && Object.keys(s).length <= 2));
  }

  // The schema with an optional null branch removed: {schema, nullable}.
  function unwrapNullable(schema, root) {
    schema = resolve(schema, root);
    var branches = schema && (schema.anyOf || schema.oneOf);
    if (Array.isArray(branches)) {
      var rest = branches.filter(function (b) { return !isNullSchema(resolve(b, root)); });
      if (rest.length === 1 && rest.length < branches.length) {
        var inner = resolve(rest[0], root);
        var outer = Object.assign({}, schema);
        delete outer.anyOf;
        delete outer.oneOf;
        return { schema: Object.assign({}, inner, outer, { description: schema.description || inner.description }), nullable: true };
      }
    }
    if (schema && Array.isArray(schema.type)) {
      var types = schema.type.filter(function (t) { return t !== "null"; });
      var copy = Object.assign({}, schema, { type: types.length === 1 ? types[0] : types });
      return { schema: copy, nullable: types.length < schema.type.length };
    }
    return { schema: schema, nullable: false };
  }

  // Choices of a string/number enum: [{value, label}] or null.
  function choices(schema, root) {
    if (Array.isArray(schema.enum)) {
      var values = schema.enum.filter(function (v) { return v !== null; });
      if (values.every(isScalar)) return values.map(function (v) { return { value: v, label: String(v) }; });
      return null;
    }
    var branches = schema.oneOf || schema.anyOf;
    if (!Array.isArray(branches) || branches.length === 0) return null;
    var out = [];
    for (var i = 0; i < branches.length; i++) {
      var b = resolve(branches[i], root);
      if (isNullSchema(b)) continue;
      var value;
      if (b && "const" in b) value = b.const;
      else if (b && Array.isArray(b.enum) && b.enum.length === 1) value = b.enum[0];
      else if (b && Array.isArray(b.enum) && b.enum.every(isScalar)) {
        b.enum.forEach(function (v) { out.push({ value: v, label: String(v) }); });
        continue;
      } else return null;
      if (!isScalar(value)) return null;
      out.push({ value: value, label: b.description ? value + " \u2014 " + firstLine(b.description) : String(value) });
    }
    return out.length ? out : null;
  }

  function isScalar(v) {
    return typeof v === "string" || typeof v === "number" || typeof v === "boolean";
  }

  function firstLine(text) {
    var line = String(text).split(/\n\s*\n/)[0].replace(/\s+/g, " ").trim();
    return line.length > 90 ? line.slice(0, 87) + "\u2026" : line;
  }

  // Appends `text` to `node`, `quoted` parts (as schema descriptions write
  // code) as <code> elements. Text nodes only: nothing is parsed as markup.
  function richText(node, text) {
    String(text).split("`").forEach(function (part, i) {
      if (!part) return;
      node.appendChild(i % 2 ? el("code", null, part) : document.createTextNode(part));
    });
  }

  function kindOf(schema, root) {
    if (choices(schema, root)) return "choice";
    var t = schema.type;
    if (t === "string") return "string";
    if (t === "integer") return "integer";
    if (t === "number") return "number";
    if (t === "boolean") return "boolean";
    if (t === "array") {
      var items = unwrapNullable(schema.items || {}, root).schema || {};
      if (items.type === "string" && !choices(items, root)) return "lines";
    }
    return "json";
  }

  // "has_header" -> "Has header": a readable label; the key itself is
  // shown beside it, since the API and the docs use it.
  function humanize(name) {
    var words = String(name).replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_-]+/g, " ").trim().toLowerCase();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function label(name, schema, required, forId) {
    var text = schema.title || humanize(name);
    var node = el("label", { for: forId }, text);
    if (text !== name) node.appendChild(el("code", { class: "key" }, name));
    if (required) {
      node.appendChild(document.createTextNode(" "));
      node.appendChild(el("span", { class: "req", "aria-hidden": "true" }, "*"));
    }
    return node;
  }

  // One property: appends its label, input and help; returns its reader.
  function field(container, name, rawSchema, required, root, prefix) {
    var unwrapped = unwrapNullable(rawSchema, root);
    var schema = unwrapped.schema || {};
    var kind = kindOf(schema, root);
    var id = prefix + "-" + (++counter);
    var helpId = id + "-help";
    var errorId = id + "-error";
    var wrap = el("div", { class: "field field-" + kind, "data-field": name });
    var hasDefault = "default" in schema && schema.default !== null;
    var help = schema.description ? String(schema.description).trim() : "";
    var extra = "";
    var input;

    if (kind === "boolean") {
      input = el("input", { type: "checkbox", id: id, "aria-describedby": helpId });
      input.checked = hasDefault ? schema.default === true : false;
      var row = el("div", { class: "check" });
      row.appendChild(input);
      row.appendChild(label(name, schema, false, id));
      wrap.appendChild(row);
    } else {
      wrap.appendChild(label(name, schema, required, id));
      if (kind === "choice") {
        input = el("select", { id: id, "aria-describedby": helpId, required: required });
        if (!required || !hasDefault) {
          input.appendChild(el("option", { value: "" }, hasDefault ? "Default (" + String(schema.default) + ")" : required ? "Choose\u2026" : "Not set"));
        }
        choices(schema, root).forEach(function (c, i) {
          var option = el("option", { value: String(i) }, c.label);
          option.dataset.index = String(i);
          input.appendChild(option);
        });
        input._choices = choices(schema, root);
        if (required && hasDefault) {
          input._choices.forEach(function (c, i) { if (c.value === schema.default) input.value = String(i); });
        }
      } else if (kind === "string" || kind === "integer" || kind === "number") {
        var numeric = kind !== "string";
        input = el("input", {
          id: id,
          type: numeric ? "number" : "text",
          inputmode: kind === "integer" ? "numeric" : kind === "number" ? "decimal" : null,
          step: kind === "integer" ? "1" : numeric ? "any" : null,
          min: numeric && typeof schema.minimum === "number" ? schema.minimum : null,
          max: numeric && typeof schema.maximum === "number" ? schema.maximum : null,
          maxlength: !numeric && typeof schema.maxLength === "number" ? schema.maxLength : null,
          required: required,
          "aria-required": required ? "true" : null,
          "aria-describedby": helpId,
          autocomplete: "off",
          spellcheck: "false"
        });
        if (hasDefault && isScalar(schema.default)) input.value = String(schema.default);
      } else if (kind === "lines") {
        input = el("textarea", { id: id, rows: 3, "aria-describedby": helpId, required: required, spellcheck: "false" });
        if (hasDefault && Array.isArray(schema.default)) input.value = schema.default.join("\n");
        extra = "One value per line.";
      } else {
        input = el("textarea", { id: id, rows: 4, class: "json", "aria-describedby": helpId, required: required, spellcheck: "false" });
        if (hasDefault) input.value = JSON.stringify(schema.default, null, 2);
        extra = "JSON" + (schema.type ? " (" + [].concat(schema.type).join(" or ") + ")" : "") + ".";
      }
      wrap.appendChild(input);
    }
    // A long description: its first sentence as the help, the rest folded.
    var summary = help;
    var rest = "";
    if (help.length > 220) {
      var sentence = help.search(/\.(\s|$)/);
      var clause = help.search(/[:;](\s|$)/);
      if (sentence > 0 && sentence < 200) {
        summary = help.slice(0, sentence + 1);
        rest = help.slice(sentence + 1).trim();
      } else if (clause > 0 && clause < 200) {
        summary = help.slice(0, clause) + "\u2026";
        rest = help.slice(clause + 1).trim();
      } else {
        var space = help.lastIndexOf(" ", 160);
        summary = help.slice(0, space > 0 ? space : 160) + "\u2026";
        rest = help;
      }
    }
    var helpNode = el("p", { id: helpId, class: "help" });
    richText(helpNode, [summary, extra].filter(Boolean).join(" "));
    if (!helpNode.textContent) helpNode.hidden = true;
    wrap.appendChild(helpNode);
    if (rest) {
      var more = el("details", { class: "more" });
      more.appendChild(el("summary", null, "More about " + (schema.title || humanize(name)).toLowerCase()));
      var restNode = el("p", { class: "help" });
      richText(restNode, rest);
      more.appendChild(restNode);
      wrap.appendChild(more);
    }
    var errorNode = el("p", { id: errorId, class: "field-error", hidden: true });
    wrap.appendChild(errorNode);
    container.appendChild(wrap);

    function clearError() {
      errorNode.hidden = true;
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", helpId);
    }
    input.addEventListener("input", clearError);
    input.addEventListener("change", clearError);

    function fail(message) {
      errorNode.textContent = message;
      errorNode.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", helpId + " " + errorId);
      return { error: message, input: input };
    }

    // {set: bool, value} or {error, input}.
    return function read() {
      clearError();
      var label = schema.title || name;
      if (kind === "boolean") {
        var base = hasDefault ? schema.default === true : false;
        return input.checked === base && !required ? { set: false } : { set: true, value: input.checked };
      }
      var text = input.value;
      if (kind === "choice") {
        if (text === "") return required && !hasDefault ? fail(label + " is required: choose a value.") : { set: false };
        return { set: true, value: input._choices[Number(text)].value };
      }
      if (text.trim() === "") {
        return required ? fail(label + " is required.") : { set: false };
      }
      if (kind === "string") return { set: true, value: text };
      if (kind === "integer" || kind === "number") {
        var n = Number(text);
        if (!isFinite(n) || (kind === "integer" && !Number.isInteger(n))) {
          return fail(label + " must be " + (kind === "integer" ? "a whole number." : "a number."));
        }
        return { set: true, value: n };
      }
      if (kind === "lines") {
        return { set: true, value: text.split(/\r?\n/).map(function (s) { return s.trim(); }).filter(Boolean) };
      }
      try {
        return { set: true, value: JSON.parse(text) };
      } catch (err) {
        return fail(label + " is not valid JSON (" + err.message + "). Fix it or clear the field.");
      }
    };
  }

  // Renders `schema` into `container` (emptied first). Returns a function
  // that reads the values: {value: object} or {error, input}.
  function render(container, rootSchema, prefix) {
    while (container.firstChild) container.removeChild(container.firstChild);
    var root = rootSchema && typeof rootSchema === "object" ? rootSchema : {};
    var schema = resolve(root, root) || {};
    var properties = schema.properties && typeof schema.properties === "object" ? schema.properties : null;
    var required = Array.isArray(schema.required) ? schema.required : [];
    if (!properties || Object.keys(properties).length === 0) {
      if (schema.additionalProperties === false || rootSchema === false) {
        container.appendChild(el("p", { class: "help" }, "No settings."));
        return function () { return { value: {} }; };
      }
      // An object this form cannot describe: the whole document as JSON.
      var whole = field(container, "settings", { type: "object", description: schema.description, title: "Settings as JSON" }, false, root, prefix);
      return function () {
        var got = whole();
        if (got.error) return got;
        return { value: got.set ? got.value : {} };
      };
    }
    var readers = Object.keys(properties).map(function (name) {
      return { name: name, read: field(container, name, properties[name], required.indexOf(name) >= 0, root, prefix) };
    });
    return function () {
      var value = {};
      var firstError = null;
      readers.forEach(function (r) {
        var got = r.read();
        if (got.error) { firstError = firstError || got; return; }
        if (got.set) value[r.name] = got.value;
      });
      return firstError || { value: value };
    };
  }

  window.SchemaForm = { render: render, richText: richText };
})();
