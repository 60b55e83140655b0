(function () {
  "use strict";
  /* The LAN pages' one script: JSON to the box with the CSRF token, errors shown by
     their field, the values marked data-s kept fresh from /api/status, the preview picture
     while the page is visible, the upload's progress. The pages read without it. */
  var csrf = document.querySelector("meta[name=csrf]").content;
  var main = document.querySelector("main[data-page]");
  var status = null;
  function all(css, root) { return Array.prototype.slice.call((root || document).querySelectorAll(css)); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function reasons(errors) { return errors.map(function (e) { return (e.field ? e.field + ": " : "") + e.reason; }).join("\n"); }
  function parse(text, code) {
    var j = null;
    try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
    if (code >= 200 && code < 300) return { ok: true, json: j };
    if (code === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
    var errors = j && j.errors ? j.errors : [{ field: null, reason: text || "the box answered " + code }];
    return { ok: false, error: { status: code, errors: errors } };
  }
  function api(method, path, body) {
    var o = { method: method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) { o.headers["Content-Type"] = "application/json"; o.body = JSON.stringify(body); }
    return fetch(path, o).then(function (r) {
      return r.text().then(function (t) {
        var p = parse(t, r.status);
        if (!p.ok) throw p.error;
        return p.json;
      });
    }, function () {
      throw { status: 0, errors: [{ field: null, reason: "the box did not answer" }] };
    });
  }

  /* Values as the server writes them (Show in src/web/pages/mod.rs). */
  function dur(s) {
    s = Math.floor(s);
    var m = Math.floor(s / 60), h = Math.floor(s / 3600);
    if (s < 60) return s + " s";
    if (m < 60) return m + " min " + (s % 60) + " s";
    if (h < 48) return h + " h " + (m % 60) + " min";
    return Math.floor(h / 24) + " d " + (h % 24) + " h";
  }
  function bytes(n) {
    var units = ["kB", "MB", "GB", "TB"], u = 0;
    if (n < 1000) return n + " B";
    n /= 1000;
    while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
    return n.toFixed(1) + " " + units[u];
  }
  var show = {
    text: String, badge: String, dur: dur, bytes: bytes,
    kbps: function (v) { return v + " kbit/s"; },
    pct: function (v) { return v + " %"; }
  };
  function at(data, path) {
    return path.split(".").reduce(function (v, k) { return v == null ? v : v[k]; }, data);
  }
  function empty(v) { return v == null || v === "" || v === false; }
  function fill(data) {
    all("[data-s]").forEach(function (e) {
      var v = at(data, e.getAttribute("data-s")), f = e.getAttribute("data-f");
      var t = empty(v) ? "—" : show[f](v);
      if (e.textContent !== t) e.textContent = t;
      if (f === "badge") e.className = "badge b-" + v;
    });
    all("[data-if]").forEach(function (e) { e.hidden = empty(at(data, e.getAttribute("data-if"))); });
  }
  function stale(why) {
    var p = document.getElementById("stale");
    p.hidden = !why;
    if (why) p.textContent = "Not up to date: " + why;
  }
  function flash(text) {
    var p = document.getElementById("flash");
    p.textContent = text;
    p.hidden = !text;
  }

  /* fn every ms while the page is visible, never two at once, at once when it shows again. */
  function every(ms, fn) {
    var busy = false;
    function tick() {
      if (document.hidden || busy) return;
      busy = true;
      Promise.resolve().then(fn).catch(function () { return null; }).then(function () { busy = false; });
    }
    setInterval(tick, ms);
    document.addEventListener("visibilitychange", tick);
    tick();
  }

  if (main.hasAttribute("data-refresh")) {
    every(2000, function () {
      return api("GET", "/api/status").then(function (s) {
        status = s;
        var shape = main.getAttribute("data-shape");
        if (shape !== null && shape !== (s.destinations || []).map(function (d) { return d.name; }).join("\n")) {
          location.reload();
          return;
        }
        fill(s);
        stale("");
      }, function (e) { stale(reasons(e.errors)); });
    });
  }

  var img = document.getElementById("preview");
  if (img) {
    var why = document.getElementById("preview-why"), shown = null;
    every(1000, function () {
      return fetch("/api/preview.jpg", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (!r.ok) {
          return r.text().then(function (t) {
            var p = parse(t, r.status);
            why.textContent = "No picture: " + reasons(p.error.errors);
            why.hidden = false;
            img.hidden = true;
          });
        }
        return r.blob().then(function (b) {
          var old = shown;
          shown = URL.createObjectURL(b);
          img.src = shown;
          img.hidden = false;
          why.hidden = true;
          if (old) URL.revokeObjectURL(old);
        });
      });
    });
  }

  /* Forms marked data-action go as JSON: their named fields (numbers as numbers,
     checkboxes as true/false; data-keep fields only when changed, data-skip never), or
     data-body instead. */
  function body(form) {
    if (form.hasAttribute("data-body")) return JSON.parse(form.getAttribute("data-body"));
    if (form.tagName !== "FORM") return {};
    var o = {};
    all("input[name],select[name],textarea[name]", form).forEach(function (e) {
      if (e.name === "csrf" || e.disabled || e.hasAttribute("data-skip")) return;
      if (e.hasAttribute("data-keep") && e.value === (e.tagName === "SELECT" ? selectedDefault(e) : e.defaultValue)) return;
      if (e.type === "checkbox") o[e.name] = e.checked;
      else if (e.type === "number" || e.hasAttribute("data-number")) o[e.name] = e.value === "" ? null : Number(e.value);
      else o[e.name] = e.value;
    });
    return o;
  }
  function selectedDefault(s) {
    var o = all("option", s).filter(function (o) { return o.defaultSelected; })[0];
    return o ? o.value : "";
  }
  function clear(form) {
    all(".err[data-js],.ok", form).forEach(function (e) { e.remove(); });
    all("[aria-invalid]", form).forEach(function (e) { e.removeAttribute("aria-invalid"); });
  }
  /* Each error next to its input (the API's field name, or its last part), the rest
     at the form's end. */
  function showErrors(form, errors) {
    clear(form);
    var rest = form.querySelector(".result"), fields = form.elements;
    errors.forEach(function (er) {
      var name = er.field || "", input = name && fields && (fields.namedItem(name) || fields.namedItem(name.split(".").pop()));
      var p = el("p", "err", input ? er.reason : reasons([er]));
      p.setAttribute("data-js", "");
      if (input && input.insertAdjacentElement) {
        input.setAttribute("aria-invalid", "true");
        (input.closest(".pw") || input.closest("label.check") || input).insertAdjacentElement("afterend", p);
      } else {
        rest.appendChild(p);
      }
    });
  }
  function liveNow() {
    return !!status && (status.destinations || []).some(function (d) { return d.state === "live"; });
  }
  /* A form, or a button marked like one; errors go to its form or section. */
  function send(form) {
    var question = form.getAttribute("data-confirm"), data = body(form);
    if (question && !confirm(question)) return;
    var reboot = form.getAttribute("data-reboot");
    if (reboot !== null && liveNow()) {
      if (!confirm(reboot)) return;
      data.confirm = true;
    }
    var method = form.getAttribute("data-method"), path = form.getAttribute("data-action");
    var buttons = form.tagName === "FORM" ? all("button", form) : [form];
    buttons.forEach(function (b) { b.disabled = true; });
    api(method, path, data).catch(function (e) {
      /* The box asks first (a reboot while live): asked here, sent again confirmed. */
      if (reboot === null || e.status !== 409 || data.confirm) throw e;
      if (!confirm(reasons(e.errors))) throw { status: 0, errors: [] };
      data.confirm = true;
      return api(method, path, data);
    }).then(function (j) {
      var said = form.getAttribute("data-done") || (j && typeof j.message === "string" && j.message);
      sessionStorage.setItem("flash", said || "Saved.");
      location.reload();
    }, function (e) {
      showErrors(form.tagName === "FORM" ? form : form.closest("section"), e.errors);
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.getAttribute("action") === "/logout") {
      /* With the token as a header too (the router may take only that). */
      ev.preventDefault();
      fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
        .then(function () { location.assign("/login"); }, function () { form.submit(); });
      return;
    }
    if (!form.hasAttribute("data-action")) return;
    ev.preventDefault();
    send(form);
  });
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (b) send(b);
  });
  all("form[data-action] button, button[data-action], button[data-edit], #upload button, #log-refresh").forEach(function (b) { b.disabled = false; });
  flash(sessionStorage.getItem("flash") || "");
  sessionStorage.removeItem("flash");

  /* A preset fills in its server URL. */
  all("select[data-preset]").forEach(function (s) {
    s.addEventListener("change", function () {
      var u = s.form.elements.namedItem("url"), chosen = s.options[s.selectedIndex].getAttribute("data-url");
      if (chosen) u.value = chosen;
      else if (u.value === u.defaultValue) { u.value = ""; u.focus(); }
    });
  });

  /* Edit: the add form takes the destination picked (its key is never sent here). */
  all("button[data-edit]").forEach(function (b) {
    b.addEventListener("click", function () {
      var d = JSON.parse(b.getAttribute("data-edit")), form = document.getElementById("edit"), f = form.elements;
      clear(form);
      form.setAttribute("data-method", "PUT");
      form.setAttribute("data-action", d.path);
      f.namedItem("name").value = f.namedItem("name").defaultValue = d.name;
      f.namedItem("url").value = f.namedItem("url").defaultValue = d.url;
      f.namedItem("url").toggleAttribute("data-keep", d.keep_url);
      document.getElementById("d-preset").value = d.preset;
      f.namedItem("key").value = "";
      f.namedItem("key").placeholder = d.key_saved ? "saved — type to replace" : "the stream key from the service";
      f.namedItem("enabled").checked = d.enabled;
      document.getElementById("edit-title").textContent = "Edit “" + d.name + "”";
      document.getElementById("edit-cancel").hidden = false;
      document.getElementById("edit-card").scrollIntoView();
    });
  });
  var cancel = document.getElementById("edit-cancel");
  if (cancel) cancel.addEventListener("click", function () { location.reload(); });

  /* Forms and lists filled in from the API they are marked with (data-load). */
  function load(e) {
    return api("GET", e.getAttribute("data-load")).then(function (j) {
      if (e.tagName === "FORM") {
        all("select[data-options]", e).forEach(function (s) {
          (j[s.getAttribute("data-options")] || []).forEach(function (v) { s.appendChild(el("option", "", v)).value = v; });
        });
        Object.keys(j || {}).forEach(function (k) {
          var input = e.elements.namedItem(k), v = j[k] == null ? "" : String(j[k]);
          if (!input || input.type === "password") return;
          if (input.type === "checkbox") input.checked = input.defaultChecked = !!j[k];
          else if (input.tagName === "SELECT") {
            if (!all("option", input).some(function (o) { return o.value === v; })) input.appendChild(el("option", "", v)).value = v;
            input.value = v;
            all("option", input).forEach(function (o) { o.defaultSelected = o.value === v; });
          } else input.value = input.defaultValue = v;
        });
        var where = e.querySelector("#b-where");
        if (where && j.file) where.textContent = (j.board || j.board_problem || "") + " · " + j.file + (j.gpu_mem_max ? " · GPU memory up to " + j.gpu_mem_max + " MB" : "");
      } else if (e.id === "saved") {
        savedNetworks(e, j);
      } else if (e.id === "log") {
        var lines = Array.isArray(j) ? j : (j && j.lines) || [];
        e.textContent = lines.map(function (l) { return typeof l === "string" ? l : l.text || l.message || JSON.stringify(l); }).join("\n") || "No lines yet.";
        e.scrollTop = e.scrollHeight;
      } else if (e.id === "probe") {
        probe(e, j || {});
      } else {
        keyValues(e, j);
      }
    }, function (er) {
      if (e.tagName === "FORM") {
        all("#b-where", e).forEach(function (w) { w.textContent = ""; });
        showErrors(e, er.errors);
        return;
      }
      e.textContent = "";
      e.appendChild(el(e.tagName === "UL" ? "li" : "p", "err", reasons(er.errors)));
    });
  }
  /* What GET /api/probe found, the pipeline it would run (or why none) and why. */
  function probe(e, j) {
    e.textContent = "";
    e.appendChild(el("pre", "line", j.found || "—"));
    var p = j.pipeline || {};
    e.appendChild(el("h3", "", p.Ok ? "The pipeline these settings would run" : "No pipeline"));
    e.appendChild(el("pre", p.Ok ? "line" : "err", p.Ok || p.Err || "—"));
    if ((j.reasons || []).length) {
      var ul = e.appendChild(el("ul"));
      j.reasons.forEach(function (r) { ul.appendChild(el("li", "", r)); });
    }
  }
  function keyValues(e, j) {
    var dl = el("dl", "kv");
    Object.keys(j || {}).forEach(function (k) {
      var v = j[k];
      dl.appendChild(el("dt", "", k.replace(/_/g, " ")));
      var dd = dl.appendChild(el("dd"));
      if (v !== null && typeof v === "object") dd.appendChild(el("pre", "", JSON.stringify(v, null, 1)));
      else dd.textContent = v == null || v === "" ? "—" : String(v);
    });
    e.textContent = "";
    e.appendChild(dl);
  }
  function apiForm(method, path, label, cls, question) {
    var f = el("form");
    f.setAttribute("data-method", method);
    f.setAttribute("data-action", path);
    if (question) f.setAttribute("data-confirm", question);
    f.appendChild(el("button", cls, label)).type = "submit";
    f.appendChild(el("div", "result"));
    return f;
  }
  function savedNetworks(ul, j) {
    var list = (j && j.saved) || [];
    ul.textContent = "";
    if (j && j.saved_error) ul.appendChild(el("li", "err", j.saved_error));
    else if (!list.length) ul.appendChild(el("li", "hint", "No saved network."));
    list.forEach(function (n) {
      var li = ul.appendChild(el("li")), path = "/api/wifi/networks/" + encodeURIComponent(n.uuid || n.id);
      var name = li.appendChild(el("span", "name", n.ssid));
      name.appendChild(el("small", "meta", [n.active ? "on it now" : "", n.security === "open" ? "open" : String(n.security).toUpperCase(), n.hidden ? "hidden" : "", "priority " + n.priority].filter(Boolean).join(" · ")));
      var prio = apiForm("PUT", path, "Set", "", null), box = el("input");
      box.type = "number";
      box.name = "priority";
      box.value = box.defaultValue = n.priority;
      box.setAttribute("aria-label", "Priority of " + n.ssid);
      prio.insertBefore(box, prio.firstChild);
      prio.className = "actions";
      li.appendChild(prio);
      li.appendChild(apiForm("DELETE", path, "Forget", "danger", "Forget “" + n.ssid + "”? Its password is removed too."));
    });
  }
  all("[data-load]").forEach(load);
  var refresh = document.getElementById("log-refresh");
  if (refresh) refresh.addEventListener("click", function () { load(document.getElementById("log")); });

  /* The upload: one bar, the upload its first half, the install its second. */
  var upload = document.getElementById("upload");
  if (upload) {
    var bar = document.getElementById("progress"), said = document.getElementById("progress-text");
    var step = function (value, text) {
      bar.parentNode.hidden = false;
      bar.value = value;
      said.textContent = text;
    };
    var install = function () {
      var timer = setInterval(function () {
        api("GET", "/api/update").then(function (j) {
          var u = (j && j.update) || j || {}, p = u.progress || 0;
          if (u.state === "installing" || u.state === "idle") step(50 + p / 2, "Installing… " + p + " %");
          if (u.state === "installed" || u.state === "failed") {
            clearInterval(timer);
            step(u.state === "installed" ? 100 : bar.value, u.reboot_needed || u.message || u.state);
            if (u.state === "failed") showErrors(upload, [{ field: null, reason: u.message || "the install failed" }]);
          }
        }, function (e) { clearInterval(timer); showErrors(upload, e.errors); });
      }, 1000);
    };
    upload.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clear(upload);
      var file = upload.elements.namedItem("bundle").files[0];
      if (!file) { showErrors(upload, [{ field: "bundle", reason: "choose a .raucb file first" }]); return; }
      var x = new XMLHttpRequest();
      x.open("POST", "/api/update/upload");
      x.setRequestHeader("X-CSRF-Token", csrf);
      x.setRequestHeader("Content-Type", "application/octet-stream");
      x.upload.onprogress = function (e) {
        if (e.lengthComputable) step(e.loaded / e.total * 50, "Uploading… " + Math.round(e.loaded / e.total * 100) + " %");
      };
      x.onload = function () {
        var p = parse(x.responseText, x.status);
        if (p.ok) { step(50, "Uploaded; installing…"); install(); } else showErrors(upload, p.error.errors);
      };
      x.onerror = function () { showErrors(upload, [{ field: null, reason: "the upload broke off" }]); };
      step(0, "Uploading…");
      x.send(file);
    });
  }
  document.documentElement.setAttribute("data-js", "ready");
})();
