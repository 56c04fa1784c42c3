// The export-host web console: sign in with a token (kept in this tab's
// sessionStorage only), list and follow exports, start new ones from the
// plugins' schemas, download through signed links, and see the plugins.
// Every request sends the token in the Authorization header; it never goes
// into a URL. Data from the server is written with textContent only.
"use strict";

(function () {
  var TOKEN_KEY = "export-host.token";
  var PAGE = 25;
  var ACTIVE = { pending: true, processing: true };

  var state = {
    token: null,
    plugins: null,
    admin: false,
    exports: new Map(), // id -> {record, node, parts}
    streams: new Map(), // id -> AbortController
    cursor: null
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var v = attrs[key];
        if (v !== undefined && v !== null && v !== false) node.setAttribute(key, v === true ? "" : String(v));
      });
    }
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---- messages ---------------------------------------------------------

  var announcedAt = 0;

  function announce(text) {
    announcedAt = Date.now();
    var node = $("announce");
    node.textContent = "";
    // A fresh text node, so that repeating a message is announced again.
    window.setTimeout(function () { node.textContent = text; }, 30);
  }

  function showAlert(text) {
    var node = $("alert");
    node.textContent = text || "";
    node.hidden = !text;
  }

  // ---- the API ----------------------------------------------------------

  function ApiFailure(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  async function api(method, path, body) {
    var headers = { Authorization: "Bearer " + state.token, Accept: "application/json" };
    var init = { method: method, headers: headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiFailure(0, "network", "The server could not be reached (" + err.message + "). Check your connection and try again.");
    }
    if (response.status === 204) return null;
    var data = null;
    var text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (err) { data = null; }
    }
    if (!response.ok) {
      var detail = data && data.error ? data.error : {};
      var message = detail.message || ("The server answered " + response.status + ".");
      if (response.status === 503 && response.headers.get("Retry-After")) {
        message += " Try again in " + response.headers.get("Retry-After") + " s.";
      }
      var failure = new ApiFailure(response.status, detail.code || "http_" + response.status, message);
      if (response.status === 401) signOut("Your token was refused (" + message + "). Sign in again with a valid token.");
      throw failure;
    }
    return data;
  }

  function report(err, prefix) {
    if (err instanceof ApiFailure && err.status === 401) return;
    var message = err && err.message ? err.message : String(err);
    showAlert((prefix ? prefix + ": " : "") + message);
  }

  // ---- formatting -------------------------------------------------------

  function bytes(n) {
    if (n === null || n === undefined) return "\u2014";
    var units = ["B", "kB", "MB", "GB", "TB"];
    var i = 0;
    var v = Number(n);
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
  }

  function count(n) {
    return n === null || n === undefined ? "\u2014" : Number(n).toLocaleString();
  }

  function when(text) {
    if (!text) return null;
    var date = new Date(text);
    if (isNaN(date.getTime())) return null;
    var format = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    if (date.getFullYear() !== new Date().getFullYear()) format.year = "numeric";
    var node = el("time", { datetime: text, title: date.toString() }, date.toLocaleString(undefined, format));
    return node;
  }

  function shortId(id) {
    return id.length > 16 ? id.slice(0, 12) + "\u2026" + id.slice(-4) : id;
  }

  function component(address) {
    var parts = String(address || "").split("/");
    return parts[parts.length - 1];
  }

  // ---- sign in / out ----------------------------------------------------

  async function signIn(token) {
    state.token = token;
    var plugins = await api("GET", "/v1/plugins");
    sessionStorage.setItem(TOKEN_KEY, token);
    setPlugins(plugins);
    $("nav").hidden = false;
    $("who").hidden = false;
    if (!location.hash || location.hash === "#signin") location.hash = "#exports";
    else route();
    loadExports(false);
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.plugins = null;
    state.admin = false;
    state.streams.forEach(function (ctrl) { ctrl.abort(); });
    state.streams.clear();
    state.exports.clear();
    state.cursor = null;
    clear($("exports-list"));
    clear($("plugins-body"));
    clear($("selector-fields"));
    clear($("options-fields"));
    $("nav").hidden = true;
    $("who").hidden = true;
    $("token").value = "";
    if (location.hash !== "#signin") history.replaceState(null, "", "#signin");
    route();
    showAlert(message || "");
    if (!message) announce("Signed out.");
  }

  // ---- views ------------------------------------------------------------

  var VIEWS = ["signin", "exports", "new", "plugins"];

  var shown = null;

  function route() {
    var name = (location.hash || "").replace("#", "");
    if (!state.token) name = "signin";
    else if (VIEWS.indexOf(name) < 0 || name === "signin") name = "exports";
    VIEWS.forEach(function (view) { $("view-" + view).hidden = view !== name; });
    // A message belongs to the view it was given on.
    if (shown && shown !== name) {
      showAlert("");
      // A status line older than the move is about the view left behind.
      if (Date.now() - announcedAt > 2000) $("announce").textContent = "";
    }
    shown = name;
    document.querySelectorAll("#nav a").forEach(function (link) {
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
    document.title = ({ signin: "Sign in", exports: "Exports", new: "New export", plugins: "Plugins" })[name] + " \u2013 export-host";
    if (name === "new") prepareForm();
    if (name === "plugins") renderPlugins();
    var heading = $("view-" + name).querySelector("h1");
    if (heading && document.activeElement && document.activeElement !== document.body) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
    if (name === "signin") $("token").focus();
  }

  // ---- exports ----------------------------------------------------------

  async function loadExports(more) {
    showAlert("");
    var path = "/v1/exports?limit=" + PAGE + (more && state.cursor ? "&cursor=" + encodeURIComponent(state.cursor) : "");
    try {
      var page = await api("GET", path);
      if (!more) {
        var keep = new Set(page.items.map(function (r) { return r.id; }));
        state.exports.forEach(function (entry, id) {
          if (!keep.has(id)) forget(id);
        });
      }
      page.items.forEach(function (record) { upsert(record, false); });
      if (!more) reorder(page.items.map(function (r) { return r.id; }));
      state.cursor = page.next_cursor || null;
      $("more").hidden = !state.cursor;
      updateEmpty();
    } catch (err) {
      report(err, "Cannot list the exports");
    }
  }

  function reorder(ids) {
    var list = $("exports-list");
    ids.forEach(function (id) {
      var entry = state.exports.get(id);
      if (entry) list.appendChild(entry.node);
    });
  }

  function updateEmpty() {
    $("exports-empty").hidden = state.exports.size > 0;
  }

  function forget(id) {
    var entry = state.exports.get(id);
    if (!entry) return;
    var ctrl = state.streams.get(id);
    if (ctrl) ctrl.abort();
    state.streams.delete(id);
    if (entry.node.parentNode) entry.node.parentNode.removeChild(entry.node);
    state.exports.delete(id);
    updateEmpty();
  }

  function button(text, action, label, cls) {
    return el("button", { type: "button", "data-action": action, "aria-label": label, class: cls }, text);
  }

  function buildCard(record) {
    var id = record.id;
    var node = el("li", { class: "export", id: "export-" + id, "data-id": id });
    var head = el("div", { class: "export-head" });
    var status = el("span", { class: "status", "data-role": "status" });
    var title = el("h2", { class: "export-title" });
    var idNode = el("code", { class: "export-id", title: id }, shortId(id));
    head.appendChild(status);
    head.appendChild(title);
    head.appendChild(idNode);
    node.appendChild(head);
    var bar = el("progress", { max: "1", "aria-label": "Progress of " + id, hidden: true });
    node.appendChild(bar);
    var facts = el("dl", { class: "facts" });
    node.appendChild(facts);
    var error = el("p", { class: "export-error", hidden: true });
    node.appendChild(error);
    var actions = el("div", { class: "actions" });
    var name = shortId(id);
    var parts = {
      status: status, title: title, bar: bar, facts: facts, error: error,
      download: button("Download", "download", "Download " + name, "primary"),
      copy: button("Copy link", "copy", "Copy a download link for " + name),
      cancel: button("Cancel", "cancel", "Cancel " + name),
      remove: button("Delete", "delete", "Delete " + name, "danger"),
      link: el("div", { class: "link-out", hidden: true })
    };
    [parts.download, parts.copy, parts.cancel, parts.remove].forEach(function (b) { actions.appendChild(b); });
    node.appendChild(actions);
    node.appendChild(parts.link);
    parts.download.addEventListener("click", function () { download(id, parts.download); });
    parts.copy.addEventListener("click", function () { copyLink(id, parts); });
    parts.cancel.addEventListener("click", function () { cancel(id, parts.cancel); });
    parts.remove.addEventListener("click", function () { remove(id, parts.remove); });
    return { record: record, node: node, parts: parts };
  }

  function fact(dl, term, value) {
    var pair = el("div", { "data-fact": term });
    pair.appendChild(el("dt", null, term));
    var dd = el("dd");
    if (value instanceof Node) dd.appendChild(value);
    else dd.textContent = value === null || value === undefined ? "\u2014" : String(value);
    pair.appendChild(dd);
    dl.appendChild(pair);
  }

  function paint(entry) {
    var r = entry.record;
    var p = entry.parts;
    var active = !!ACTIVE[r.status];
    p.status.textContent = r.status;
    p.status.className = "status status-" + r.status;
    p.title.textContent = component(r.loader) + " \u2192 " + component(r.format) + (r.file_name ? " \u00b7 " + r.file_name : "");
    var progress = r.progress || null;
    if (active && progress && typeof progress.fraction === "number") {
      p.bar.hidden = false;
      p.bar.value = progress.fraction;
      p.bar.textContent = Math.round(progress.fraction * 100) + "%";
    } else {
      p.bar.hidden = true;
    }
    clear(p.facts);
    if (state.admin) fact(p.facts, "User", r.user_id);
    var rows = r.row_count !== null && r.row_count !== undefined ? r.row_count : progress ? progress.rows : null;
    var size = r.size_bytes !== null && r.size_bytes !== undefined ? r.size_bytes : progress ? progress.bytes : null;
    fact(p.facts, "Rows", count(rows));
    fact(p.facts, "Size", bytes(size));
    if (active && progress) fact(p.facts, "Rate", count(progress.rows_per_s) + " rows/s");
    if (active && progress && typeof progress.fraction === "number") fact(p.facts, "Done", Math.round(progress.fraction * 100) + "%");
    fact(p.facts, "Created", when(r.created_at));
    if (r.status === "completed") {
      fact(p.facts, "Expires", when(r.expires_at));
      fact(p.facts, "Downloads", count(r.download_count));
    }
    p.error.hidden = !r.error;
    p.error.textContent = r.error || "";
    p.download.hidden = r.status !== "completed";
    p.copy.hidden = r.status !== "completed";
    p.cancel.hidden = !active;
    p.remove.hidden = active;
    entry.node.setAttribute("data-status", r.status);
  }

  function upsert(record, first) {
    var entry = state.exports.get(record.id);
    var before = entry ? entry.record.status : null;
    if (!entry) {
      entry = buildCard(record);
      state.exports.set(record.id, entry);
      var list = $("exports-list");
      if (first) list.insertBefore(entry.node, list.firstChild);
      else list.appendChild(entry.node);
    }
    entry.record = record;
    paint(entry);
    if (before && before !== record.status) {
      announce("Export " + shortId(record.id) + " is now " + record.status + ".");
    }
    if (ACTIVE[record.status]) follow(record.id);
    updateEmpty();
    return entry;
  }

  // ---- live status: Server-Sent Events over fetch -------------------------

  // Reads an event stream, calling onEvent({event, data, id}) per event.
  async function readEvents(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    var data = [];
    var name = "";
    var id = null;
    var first = true;
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      if (first && buffer.length) {
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
        first = false;
      }
      var match;
      while ((match = /\r\n|\r|\n/.exec(buffer))) {
        // A lone \r at the end may be the first half of \r\n: wait for more.
        if (match[0] === "\r" && match.index === buffer.length - 1) break;
        var line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") {
          if (data.length) onEvent({ event: name || "message", data: data.join("\n"), id: id });
          data = [];
          name = "";
          continue;
        }
        if (line.charAt(0) === ":") continue;
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.charAt(0) === " ") value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") name = value;
        else if (field === "id" && value.indexOf("\u0000") < 0) id = value;
      }
    }
  }

  function sleep(ms, signal) {
    return new Promise(function (resolve) {
      var timer = window.setTimeout(resolve, ms);
      signal.addEventListener("abort", function () { window.clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  async function follow(id) {
    if (state.streams.has(id) || !state.token) return;
    var ctrl = new AbortController();
    state.streams.set(id, ctrl);
    var lastId = null;
    var failures = 0;
    var ended = false;
    while (!ctrl.signal.aborted && !ended) {
      try {
        var headers = { Authorization: "Bearer " + state.token, Accept: "text/event-stream" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        var response = await fetch("/v1/exports/" + encodeURIComponent(id) + "/events", {
          headers: headers, signal: ctrl.signal, cache: "no-store", credentials: "omit"
        });
        if (response.status === 204) break; // the end was already seen
        if (response.status === 401) { signOut("Your token was refused. Sign in again with a valid token."); return; }
        if (response.status === 404) { forget(id); break; }
        if (!response.ok || !response.body) throw new Error("events answered " + response.status);
        await readEvents(response.body, function (event) {
          if (event.id) lastId = event.id;
          failures = 0;
          var record;
          try { record = JSON.parse(event.data); } catch (err) { return; }
          if (!state.exports.has(id)) return;
          upsert(record, false);
          if (event.event === "end") ended = true;
        });
      } catch (err) {
        if (ctrl.signal.aborted) break;
      }
      if (ended || ctrl.signal.aborted) break;
      // The stream closed early (a stopping daemon, a network blip):
      // reconnect after a growing pause, resuming from the last event.
      failures++;
      await sleep(Math.min(500 * Math.pow(2, failures), 15000), ctrl.signal);
    }
    if (state.streams.get(id) === ctrl) state.streams.delete(id);
  }

  // ---- actions ----------------------------------------------------------

  async function busy(buttonNode, work) {
    buttonNode.disabled = true;
    buttonNode.setAttribute("aria-busy", "true");
    try { await work(); } finally {
      buttonNode.disabled = false;
      buttonNode.removeAttribute("aria-busy");
    }
  }

  function download(id, buttonNode) {
    showAlert("");
    return busy(buttonNode, async function () {
      try {
        var link = await api("POST", "/v1/exports/" + encodeURIComponent(id) + "/link");
        announce("Download of " + shortId(id) + " started.");
        // A signed link: the browser downloads natively and the token
        // stays out of the URL.
        window.location.assign(link.url);
        // The download counts on the record: show the new count.
        window.setTimeout(function () { reload(id); }, 1500);
      } catch (err) {
        report(err, "Cannot download " + shortId(id));
      }
    });
  }

  function copyLink(id, parts) {
    showAlert("");
    return busy(parts.copy, async function () {
      try {
        var link = await api("POST", "/v1/exports/" + encodeURIComponent(id) + "/link");
        var copied = false;
        if (navigator.clipboard && window.isSecureContext) {
          try { await navigator.clipboard.writeText(link.url); copied = true; } catch (err) { copied = false; }
        }
        clear(parts.link);
        var fieldId = "link-" + id;
        var labelNode = el("label", { for: fieldId }, "Download link");
        var input = el("input", { id: fieldId, type: "text", readonly: true, class: "mono", "data-role": "link", spellcheck: "false" });
        input.value = link.url;
        var expiry = when(link.expires_at);
        var note = el("p", { class: "help" }, copied ? "Copied to the clipboard. Anyone with this link can download the file until " : "Copy the link from the field above. Anyone with it can download the file until ");
        if (expiry) note.appendChild(expiry); else note.appendChild(document.createTextNode("it expires"));
        note.appendChild(document.createTextNode("."));
        parts.link.appendChild(labelNode);
        parts.link.appendChild(input);
        parts.link.appendChild(note);
        parts.link.hidden = false;
        if (!copied) { input.focus(); input.select(); }
        announce(copied ? "Link copied to the clipboard." : "Link ready to copy.");
      } catch (err) {
        report(err, "Cannot make a link for " + shortId(id));
      }
    });
  }

  async function reload(id) {
    if (!state.exports.has(id)) return;
    try {
      upsert(await api("GET", "/v1/exports/" + encodeURIComponent(id)), false);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 404) forget(id);
    }
  }

  function cancel(id, buttonNode) {
    showAlert("");
    return busy(buttonNode, async function () {
      try {
        var record = await api("DELETE", "/v1/exports/" + encodeURIComponent(id));
        if (record) upsert(record, false);
        announce("Export " + shortId(id) + " cancelled.");
      } catch (err) {
        report(err, "Cannot cancel " + shortId(id));
      }
    });
  }

  function remove(id, buttonNode) {
    showAlert("");
    // Deleting removes the file: the first press asks, the second does it.
    if (buttonNode.dataset.confirm !== "yes") {
      buttonNode.dataset.confirm = "yes";
      buttonNode.textContent = "Confirm delete";
      announce("Press Confirm delete to remove export " + shortId(id) + " and its file.");
      window.setTimeout(function () {
        if (buttonNode.isConnected) {
          buttonNode.dataset.confirm = "";
          buttonNode.textContent = "Delete";
        }
      }, 8000);
      return Promise.resolve();
    }
    return busy(buttonNode, async function () {
      try {
        await api("DELETE", "/v1/exports/" + encodeURIComponent(id));
        var next = state.exports.get(id).node.nextElementSibling;
        forget(id);
        announce("Export " + shortId(id) + " deleted.");
        var target = next ? next.querySelector("button:not([hidden])") : null;
        (target || $("exports-title")).focus();
      } catch (err) {
        buttonNode.dataset.confirm = "";
        buttonNode.textContent = "Delete";
        report(err, "Cannot delete " + shortId(id));
      }
    });
  }

  // ---- plugins ----------------------------------------------------------

  function setPlugins(data) {
    state.plugins = data;
    // Only an admin's answer names the users a plugin is held for.
    state.admin = (data.plugins || []).some(function (p) {
      return p.quarantine && Object.prototype.hasOwnProperty.call(p.quarantine, "users");
    });
    $("role").textContent = state.admin ? "admin" : "";
    $("role").hidden = !state.admin;
    formReady = false;
  }

  async function refreshPlugins() {
    try {
      setPlugins(await api("GET", "/v1/plugins"));
      renderPlugins();
      announce("Plugins refreshed.");
    } catch (err) {
      report(err, "Cannot list the plugins");
    }
  }

  function badge(status) {
    return el("span", { class: "status status-" + status }, status);
  }

  function renderPlugins() {
    var body = $("plugins-body");
    clear(body);
    var data = state.plugins;
    if (!data) return;
    $("plugins-note").textContent = state.admin
      ? "Signed in as an admin: quarantine holds are listed per user."
      : "Quarantine details per user are shown to admins only.";
    var loaded = data.plugins || [];
    var section = el("section", { "aria-labelledby": "plugins-loaded" });
    section.appendChild(el("h2", { id: "plugins-loaded" }, "Loaded (" + loaded.length + ")"));
    if (!loaded.length) section.appendChild(el("p", { class: "empty" }, "No plugin is loaded. Check plugins.toml and the daemon's log."));
    var list = el("ul", { class: "plugins" });
    loaded.forEach(function (p) { list.appendChild(pluginCard(p)); });
    section.appendChild(list);
    body.appendChild(section);

    var others = [].concat(data.loading || [], data.failed || [], data.disabled || []);
    var more = el("section", { "aria-labelledby": "plugins-other" });
    more.appendChild(el("h2", { id: "plugins-other" }, "Not loaded (" + others.length + ")"));
    if (!others.length) more.appendChild(el("p", { class: "empty" }, "Every configured plugin is loaded."));
    var olist = el("ul", { class: "plugins" });
    others.forEach(function (p) {
      var li = el("li", { class: "card plugin", "data-plugin": p.name });
      var head = el("div", { class: "plugin-head" });
      head.appendChild(badge(p.status));
      head.appendChild(el("h3", null, p.name));
      li.appendChild(head);
      var dl = el("dl", { class: "facts" });
      if (p.cause) fact(dl, "Cause", p.cause);
      if (p.since) fact(dl, "Loading since", when(p.since));
      if (p.isolation) fact(dl, "Isolation", p.isolation);
      if (dl.childNodes.length) li.appendChild(dl);
      if (p.reason) li.appendChild(el("p", { class: "export-error" }, p.reason));
      olist.appendChild(li);
    });
    more.appendChild(olist);
    body.appendChild(more);
  }

  function pluginCard(p) {
    var li = el("li", { class: "card plugin", "data-plugin": p.name });
    var head = el("div", { class: "plugin-head" });
    head.appendChild(badge(p.status));
    head.appendChild(el("h3", null, p.name));
    head.appendChild(el("span", { class: "muted" }, "v" + p.version));
    li.appendChild(head);
    if (p.description) li.appendChild(el("p", { class: "muted" }, p.description));
    var dl = el("dl", { class: "facts" });
    fact(dl, "Loaders", (p.loaders || []).map(function (l) { return l.name; }).join(", ") || "none");
    fact(dl, "Formats", (p.formatters || []).map(function (f) { return f.name; }).join(", ") || "none");
    fact(dl, "Isolation", p.isolation);
    var q = p.quarantine;
    if (q) {
      fact(dl, "Faults", count(q.faults));
      fact(dl, "Users held", count(q.users_held));
      if (q.global) fact(dl, "Held for all until", when(q.global.until));
    }
    if (p.quarantined_until) fact(dl, "Held for you until", when(p.quarantined_until));
    li.appendChild(dl);
    if (p.last_fault) {
      var fault = el("p", { class: "export-error" }, "Last fault (" + p.last_fault.kind + "): " + p.last_fault.message + " ");
      var at = when(p.last_fault.at);
      if (at) fault.appendChild(at);
      li.appendChild(fault);
    }
    if (p.reload_failed) {
      li.appendChild(el("p", { class: "export-error" }, "Reload failed (" + p.reload_failed.cause + "): " + p.reload_failed.reason + " The previous version keeps serving."));
    }
    if (q && Array.isArray(q.users) && q.users.length) {
      var table = el("table", { class: "held" });
      table.appendChild(el("caption", null, "Held users"));
      var headRow = el("tr");
      ["User", "Faults", "Until"].forEach(function (h) { headRow.appendChild(el("th", { scope: "col" }, h)); });
      var thead = el("thead");
      thead.appendChild(headRow);
      table.appendChild(thead);
      var tbody = el("tbody");
      q.users.forEach(function (u) {
        var row = el("tr");
        row.appendChild(el("td", null, u.user));
        row.appendChild(el("td", null, count(u.faults)));
        var td = el("td");
        var t = when(u.until);
        if (t) td.appendChild(t);
        row.appendChild(td);
        tbody.appendChild(row);
      });
      table.appendChild(tbody);
      li.appendChild(table);
    }
    return li;
  }

  // ---- the new-export form ----------------------------------------------

  var formReady = false;
  var readSelector = null;
  var readOptions = null;

  function components(kind) {
    var out = [];
    ((state.plugins && state.plugins.plugins) || []).forEach(function (p) {
      (p[kind] || []).forEach(function (c) {
        out.push({ plugin: p, component: c, address: p.name + "/" + c.name });
      });
    });
    return out;
  }

  function fillSelect(select, items, describe) {
    var previous = select.value;
    clear(select);
    items.forEach(function (item) {
      var text = item.component.name + (item.plugin.name !== item.component.name ? " (" + item.plugin.name + ")" : "");
      if (item.plugin.status === "quarantined") text += " \u2014 quarantined";
      var option = el("option", { value: item.address }, describe ? describe(item, text) : text);
      select.appendChild(option);
    });
    if (items.some(function (i) { return i.address === previous; })) select.value = previous;
  }

  function prepareForm() {
    if (formReady) return;
    var loaders = components("loaders");
    var formats = components("formatters");
    $("new-empty").hidden = loaders.length > 0 && formats.length > 0;
    $("new-form").hidden = !(loaders.length > 0 && formats.length > 0);
    fillSelect($("new-loader"), loaders);
    fillSelect($("new-format"), formats, function (item, text) { return text + " \u2014 ." + item.component.extension; });
    loaderChanged();
    formatChanged();
    formReady = true;
  }

  function find(kind, address) {
    return components(kind).filter(function (i) { return i.address === address; })[0];
  }

  function loaderChanged() {
    var item = find("loaders", $("new-loader").value);
    $("new-loader-help").textContent = item ? item.component.description : "";
    readSelector = item ? SchemaForm.render($("selector-fields"), item.component.selector_schema, "sel") : null;
  }

  function formatChanged() {
    var item = find("formatters", $("new-format").value);
    $("new-format-help").textContent = item ? item.component.description + " (" + item.component.mime_type + ")" : "";
    readOptions = item ? SchemaForm.render($("options-fields"), item.component.options_schema, "opt") : null;
  }

  async function submitNew(event) {
    event.preventDefault();
    showAlert("");
    var errorNode = $("new-error");
    errorNode.hidden = true;
    if (!readSelector || !readOptions) return;
    var selector = readSelector();
    var options = readOptions();
    var failed = selector.error ? selector : options.error ? options : null;
    if (failed) {
      errorNode.textContent = failed.error;
      errorNode.hidden = false;
      failed.input.focus();
      return;
    }
    var opts = options.value;
    var fileName = $("new-file-name").value.trim();
    if (fileName) opts.file_name = fileName;
    if ($("new-compression").value) opts.compression = $("new-compression").value;
    var request = { loader: $("new-loader").value, format: $("new-format").value, selector: selector.value, options: opts };
    var callback = $("new-callback").value.trim();
    if (!$("callback-group").hidden && callback) request.callback_url = callback;
    var submit = $("new-submit");
    await busy(submit, async function () {
      try {
        var record = await api("POST", "/v1/exports", request);
        upsert(record, true);
        announce("Export " + shortId(record.id) + " started: " + record.status + ".");
        location.hash = "#exports";
      } catch (err) {
        if (err instanceof ApiFailure && err.status === 401) return;
        errorNode.textContent = "The export was not started: " + err.message;
        errorNode.hidden = false;
        errorNode.focus();
      }
    });
  }

  // A server that takes a callback URL with a request says so in its API
  // document: only then is the field offered.
  async function detectCallback() {
    try {
      var response = await fetch("/v1/openapi.json", { cache: "no-store", credentials: "omit" });
      if (!response.ok) return;
      var doc = await response.json();
      var schemas = (doc.components && doc.components.schemas) || {};
      var field = schemas.ExportRequest && schemas.ExportRequest.properties && schemas.ExportRequest.properties.callback_url;
      if (!field) return;
      var help = $("new-callback-help");
      SchemaForm.richText(help, (field.description || "Where the server reports the export's end.").replace(/\s+/g, " ").trim());
      $("callback-group").hidden = false;
    } catch (err) {
      // Without the document the field stays hidden; nothing else depends on it.
    }
  }

  // ---- start ------------------------------------------------------------

  function start() {
    $("signin-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      showAlert("");
      var token = $("token").value.trim();
      if (!token) {
        showAlert("Enter your API token.");
        $("token").focus();
        return;
      }
      try {
        await signIn(token);
        announce("Signed in.");
      } catch (err) {
        state.token = null;
        if (err instanceof ApiFailure && err.status === 401) {
          showAlert("That token was refused: check it was copied whole and has not been revoked or expired.");
        } else {
          report(err, "Cannot sign in");
        }
        $("token").focus();
      }
    });
    $("sign-out").addEventListener("click", function () { signOut(); });
    $("refresh").addEventListener("click", function () { loadExports(false).then(function () { announce("Exports refreshed."); }); });
    $("more").addEventListener("click", function () { loadExports(true); });
    $("plugins-refresh").addEventListener("click", refreshPlugins);
    $("new-loader").addEventListener("change", loaderChanged);
    $("new-format").addEventListener("change", formatChanged);
    $("new-form").addEventListener("submit", submitNew);
    $("new-error").setAttribute("tabindex", "-1");
    $("new-form").addEventListener("input", function () { $("new-error").hidden = true; });
    window.addEventListener("hashchange", route);
    detectCallback();

    var saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      signIn(saved).catch(function (err) {
        if (!(err instanceof ApiFailure && err.status === 401)) {
          state.token = null;
          report(err, "Cannot sign in");
          route();
        }
      });
    } else {
      route();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
