/* supportbot web chat widget: embed with one tag, no build step.
 *
 *   <script src="https://BOT/webchat/widget.js" data-title="Help" data-color="#0b7285"
 *           data-text-color="#ffffff" data-greeting="Hi!" data-position="right"
 *           data-placeholder="Ask us anything" data-streaming="true"></script>
 *
 * Settings come from the bot (GET BOT/webhooks/webchat/config, the YAML `webchat` channel);
 * data-* attributes override them. Replies stream over BOT/webhooks/webchat/ws and fall back
 * to POST BOT/webhooks/webchat. The visitor's session token (from POST
 * BOT/webhooks/webchat/session, renewed before it expires), transcript and open state live in
 * this site's localStorage, so a reload continues the same conversation (session key
 * webchat:<sender>, the sender fixed by the token); the page chat at BOT/ shares it.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src || document.getElementById("supportbot-webchat")) return;
  var base = script.src.replace(/\/webchat\/widget\.js([?#].*)?$/, "");
  var data = script.dataset;
  var prefix = "supportbot:" + base + ":";
  var HISTORY_LIMIT = 50;

  var store = {
    get: function (key, fallback) {
      try {
        var v = window.localStorage.getItem(prefix + key);
        return v === null ? fallback : JSON.parse(v);
      } catch (e) { return fallback; }
    },
    set: function (key, value) {
      try { window.localStorage.setItem(prefix + key, JSON.stringify(value)); } catch (e) { /* private mode */ }
    }
  };

  var RENEW_BEFORE_S = 24 * 3600;
  var session = store.get("session", null);  // {token, sender, expires_at}
  var pendingSession = null;

  function ensureSession(fresh) {
    // A valid session token: the stored one, renewed when it is close to expiring, or a new
    // visitor's (then the old transcript belongs to nobody and is dropped).
    var now = Date.now() / 1000;
    if (!fresh && session && session.token && session.expires_at - now > RENEW_BEFORE_S) {
      return Promise.resolve(session);
    }
    if (pendingSession) return pendingSession;
    function ask(token) {
      var headers = token ? { Authorization: "Bearer " + token } : {};
      return fetch(base + "/webhooks/webchat/session", { method: "POST", mode: "cors", headers: headers });
    }
    var old = fresh ? null : session && session.token;
    pendingSession = ask(old).then(function (res) {
      if (res.status === 401 && old) return ask(null);
      return res;
    }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (body) {
      if (!session || session.sender !== body.sender) { history = []; store.set("history", history); }
      session = body;
      store.set("session", session);
      pendingSession = null;
      return session;
    }, function (err) { pendingSession = null; throw err; });
    return pendingSession;
  }

  var config = {
    title: "Chat with us", greeting: "Hi! How can I help you today?",
    placeholder: "Type your question…", color: "#1d4ed8", text_color: "#ffffff",
    position: "right", streaming: true
  };
  var available = true;

  function validColor(value) {
    return typeof value === "string" && window.CSS && CSS.supports("color", value);
  }

  function applyOverrides() {
    if (data.title) config.title = data.title;
    if (data.greeting !== undefined) config.greeting = data.greeting;
    if (data.placeholder) config.placeholder = data.placeholder;
    if (validColor(data.color)) config.color = data.color;
    if (validColor(data.textColor)) config.text_color = data.textColor;
    if (data.position === "left" || data.position === "right") config.position = data.position;
    if (data.streaming) config.streaming = data.streaming !== "false";
  }

  function loadConfig() {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, 5000);
    return fetch(base + "/webhooks/webchat/config", { mode: "cors", signal: controller && controller.signal })
      .then(function (res) {
        if (res.status === 403) available = false;
        return res.ok ? res.json() : {};
      })
      .then(function (remote) {
        Object.keys(config).forEach(function (k) { if (remote[k] !== undefined) config[k] = remote[k]; });
      })
      .catch(function () { /* defaults; sending will report the problem */ })
      .then(function () { clearTimeout(timer); applyOverrides(); });
  }

  var CSS_TEXT = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; }",
    ".launcher { position: fixed; bottom: 20px; width: 56px; height: 56px; border-radius: 50%; border: 0;",
    "  background: var(--sb-color); color: var(--sb-text); cursor: pointer; z-index: 2147483646;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); display: flex; align-items: center; justify-content: center; }",
    ".launcher svg { width: 26px; height: 26px; fill: currentColor; }",
    ".right { right: 20px; } .left { left: 20px; }",
    ".panel { position: fixed; bottom: 88px; width: min(370px, calc(100vw - 32px));",
    "  height: min(540px, calc(100vh - 110px)); background: #fff; color: #111827; border-radius: 12px;",
    "  box-shadow: 0 8px 30px rgba(0,0,0,.25); display: flex; flex-direction: column; overflow: hidden;",
    "  z-index: 2147483647; }",
    ".panel[hidden] { display: none; }",
    "header { display: flex; align-items: center; justify-content: space-between; padding: 10px 14px;",
    "  background: var(--sb-color); color: var(--sb-text); }",
    "h2 { margin: 0; font-size: 16px; font-weight: 600; }",
    ".close { background: transparent; border: 0; color: inherit; font-size: 22px; line-height: 1;",
    "  cursor: pointer; padding: 2px 8px; border-radius: 6px; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px 14px; }",
    ".msg { margin: 6px 0; padding: 8px 11px; border-radius: 10px; max-width: 85%; white-space: pre-wrap;",
    "  overflow-wrap: anywhere; }",
    ".user { background: var(--sb-color); color: var(--sb-text); margin-left: auto; }",
    ".bot { background: #f3f4f6; }",
    ".agent { background: #ecfdf5; border: 1px solid #a7f3d0; }",
    ".name { display: block; font-size: 12px; font-weight: 600; color: #065f46; }",
    ".event { margin: 8px auto; max-width: 100%; padding: 2px 8px; text-align: center; font-size: 13px; color: #4b5563; }",
    ".error { background: #fef2f2; color: #991b1b; }",
    ".sources { margin-top: 6px; font-size: 13px; color: #374151; }",
    ".sources ul { margin: 2px 0 0; padding-left: 18px; } .sources a { color: inherit; }",
    ".buttons { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 8px; }",
    ".buttons button { border: 1px solid var(--sb-color); background: #fff; color: #111827;",
    "  border-radius: 14px; padding: 4px 10px; cursor: pointer; }",
    ".status { min-height: 1.2em; padding: 0 14px; font-size: 13px; color: #4b5563; }",
    ".handoff { margin: 0 14px 6px; padding: 6px 10px; border-radius: 8px; background: #fffbeb;",
    "  color: #92400e; font-size: 13px; }",
    ".handoff[hidden] { display: none; }",
    "form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e5e7eb; }",
    "input { flex: 1; min-width: 0; padding: 8px 10px; border: 1px solid #9ca3af; border-radius: 8px; color: #111827; }",
    ".send { padding: 8px 14px; border: 0; border-radius: 8px; background: var(--sb-color);",
    "  color: var(--sb-text); cursor: pointer; }",
    "button:focus-visible, input:focus-visible, .log:focus-visible, a:focus-visible {",
    "  outline: 3px solid #f59e0b; outline-offset: 2px; }",
    ".sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;",
    "  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }"
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var host, root, launcher, panel, log, status, handoff, form, input, ws = null, wsReady = false;
  var wsFailures = 0, awaiting = false, current = null, history = store.get("history", []);
  if (!Array.isArray(history)) history = [];

  function build() {
    host = el("div", { id: "supportbot-webchat", "data-transport": "http" });
    host.style.setProperty("--sb-color", config.color);
    host.style.setProperty("--sb-text", config.text_color);
    root = host.attachShadow({ mode: "open" });
    root.appendChild(el("style", {}, CSS_TEXT));
    launcher = el("button", { type: "button", class: "launcher " + config.position,
      "aria-expanded": "false", "aria-controls": "sb-panel", "aria-label": "Open chat: " + config.title });
    launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
    panel = el("section", { id: "sb-panel", class: "panel " + config.position, role: "dialog",
      "aria-modal": "false", "aria-labelledby": "sb-title" });
    panel.hidden = true;
    var header = el("header");
    header.appendChild(el("h2", { id: "sb-title" }, config.title));
    var close = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "×");
    header.appendChild(close);
    log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
      "aria-label": "Conversation", tabindex: "0" });
    status = el("div", { class: "status", role: "status", "aria-live": "polite" });
    handoff = el("div", { class: "handoff", role: "status" }, "You're being connected to a person");
    handoff.hidden = !store.get("handoff", false);
    form = el("form", { "aria-label": "Send a message" });
    form.appendChild(el("label", { for: "sb-input", class: "sr-only" }, "Your message"));
    input = el("input", { id: "sb-input", type: "text", autocomplete: "off", maxlength: "4000",
      placeholder: config.placeholder });
    form.appendChild(input);
    form.appendChild(el("button", { type: "submit", class: "send" }, "Send"));
    [header, log, handoff, status, form].forEach(function (n) { panel.appendChild(n); });
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);

    launcher.addEventListener("click", function () { setOpen(panel.hidden, true); });
    close.addEventListener("click", function () { setOpen(false, true); });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); setOpen(false, true); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      send(text);
    });

    if (config.greeting) addMessage({ role: "bot", text: config.greeting }, false);
    history.forEach(function (item) { addMessage(item, false); });
    if (store.get("open", false)) setOpen(true, false);  // no focus move on page load
    if (!available) setStatus("This chat isn't available on this website.");
    connect();
    host.setAttribute("data-ready", "true");
  }

  function setOpen(open, moveFocus) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + config.title);
    store.set("open", open);
    if (open) { log.scrollTop = log.scrollHeight; if (moveFocus) input.focus(); }
    else if (moveFocus) launcher.focus();
  }

  function setStatus(text) { status.textContent = text || ""; }

  function setHandoff(on) { handoff.hidden = !on; store.set("handoff", on); }

  var agent = store.get("agent", null);  // the person answering, once one joined
  function setAgent(name) { agent = name; store.set("agent", name); }

  function remember(item) {
    history.push(item);
    if (history.length > HISTORY_LIMIT) history = history.slice(-HISTORY_LIMIT);
    store.set("history", history);
  }

  function addMessage(item, save) {
    var who = item.role === "user" ? "You" : item.role === "error" ? "Problem" :
      item.role === "agent" ? item.agent || "Agent" : config.title;
    var node = el("div", { class: "msg " + item.role });
    if (item.role === "agent") node.appendChild(el("span", { class: "name" }, who));
    else if (item.role !== "event") node.appendChild(el("span", { class: "sr-only" }, who + ": "));
    node.appendChild(el("span", { class: "text" }, item.text));
    log.appendChild(node);
    if (item.citations && item.citations.length) addSources(node, item.citations);
    if (save) remember(item);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function addSources(node, citations) {
    var box = el("div", { class: "sources" });
    box.appendChild(el("span", {}, "Sources:"));
    var list = el("ul");
    citations.forEach(function (c) {
      var li = el("li");
      var label = c.title || c.passage_id;
      if (/^https?:\/\//.test(c.source || "")) {
        li.appendChild(el("a", { href: c.source, target: "_blank", rel: "noopener noreferrer" }, label));
      } else {
        li.textContent = label;
      }
      list.appendChild(li);
    });
    box.appendChild(list);
    node.appendChild(box);
  }

  function addButtons(buttons) {
    if (!buttons || !buttons.length) return;
    var group = el("div", { class: "buttons", role: "group", "aria-label": "Suggested replies" });
    buttons.forEach(function (b) {
      var button = el("button", { type: "button" }, b.title);
      button.addEventListener("click", function () {
        group.remove();
        send(b.payload || b.title, b.title);
        input.focus();
      });
      group.appendChild(button);
    });
    log.appendChild(group);
  }

  function showReply(reply) {
    awaiting = false;
    var citations = (reply.citations || []).map(function (c) {
      return { passage_id: c.passage_id, title: c.title, source: c.source };
    });
    var person = reply.agent;  // who wrote it (agent kinds)
    var quiet = reply.kind === "handoff" && agent;  // "passed on to our team" while a person is here
    var role = reply.kind === "agent" ? "agent" : /^agent_(joined|left)$/.test(reply.kind) ? "event" : "bot";
    var item = { role: role, text: reply.text, citations: citations };
    if (role === "agent") item.agent = person || agent;  // queued ones name nobody
    if (current && (quiet || role !== "bot") &&
        current.querySelector(".text").textContent === reply.text) {
      current.remove();  // this reply's streamed text: shown in the person's style, or not at all
      current = null;
    }
    if (current && !quiet) {
      current.querySelector(".text").textContent = reply.text;
      if (citations.length) addSources(current, citations);
      remember(item);
      current = null;
    } else if (!quiet) addMessage(item, true);
    addButtons(reply.buttons);
    if (reply.kind === "agent" || reply.kind === "agent_joined") setAgent(person || agent || "Agent");
    else if (reply.kind === "agent_left" || !reply.handoff) setAgent(null);
    setHandoff(!!reply.handoff && !agent);  // a person is here: no "being connected" banner
    log.setAttribute("aria-busy", "false");
    setStatus("");
  }

  function showError(text) {
    awaiting = false;
    current = null;
    log.setAttribute("aria-busy", "false");
    setStatus("");
    addMessage({ role: "error", text: text }, false);
  }

  function onFrame(frame) {
    if (frame.type === "typing") {
      setStatus(config.title + " is typing…");
    } else if (frame.type === "delta") {
      if (!current) {
        log.setAttribute("aria-busy", "true");  // announce the finished reply once
        current = addMessage({ role: "bot", text: "" }, false);
      }
      var text = current.querySelector(".text");
      text.textContent += frame.text;
      log.scrollTop = log.scrollHeight;
    } else if (frame.type === "reply") {
      showReply(frame);
    } else if (frame.type === "error") {
      showError(frame.error);
    }
  }

  function connect() {
    if (!config.streaming || !available || !window.WebSocket || ws) return;
    ensureSession(false).then(openSocket, function () { /* HTTP will report it */ });
  }

  function openSocket(current) {
    if (ws) return;
    var socket = new WebSocket(base.replace(/^http/, "ws") + "/webhooks/webchat/ws?token=" +
                               encodeURIComponent(current.token));
    ws = socket;
    socket.onopen = function () {
      wsReady = true;
      wsFailures = 0;
      host.setAttribute("data-transport", "websocket");
      socket.send(JSON.stringify({ type: "hello" }));
    };
    socket.onmessage = function (event) {
      try { onFrame(JSON.parse(event.data)); } catch (e) { /* ignore a malformed frame */ }
    };
    socket.onclose = function () {
      ws = null;
      wsReady = false;
      host.setAttribute("data-transport", "http");
      if (awaiting) showError("The connection was interrupted; the reply may be missing.");
      wsFailures += 1;  // reconnect with backoff; until then messages go over HTTP
      if (wsFailures <= 6) setTimeout(connect, Math.min(30000, 500 * Math.pow(2, wsFailures)));
    };
  }

  function sendHttp(text, retried) {
    setStatus(config.title + " is typing…");
    return ensureSession(retried).then(function (current) {
      return fetch(base + "/webhooks/webchat", {
        method: "POST", mode: "cors",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + current.token },
        body: JSON.stringify({ message: text })
      });
    }).then(function (res) {
      if (res.status === 401 && !retried) return sendHttp(text, true);  // expired: a new one
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (res.ok && Array.isArray(body)) { body.forEach(showReply); return; }
        if (res.status === 403) showError("This chat isn't available on this website.");
        else if (res.status === 429) showError("You're sending messages too quickly. Please wait a moment.");
        else showError(body.error || "Something went wrong (HTTP " + res.status + ").");
      });
    }).catch(function () {
      showError("The assistant can't be reached right now. Please try again.");
    });
  }

  function send(text, shown) {
    addMessage({ role: "user", text: shown || text }, true);
    if (wsReady && ws) {
      awaiting = true;
      ws.send(JSON.stringify({ type: "message", message: text }));
    } else {
      sendHttp(text);
    }
  }

  function start() { loadConfig().then(build); }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
