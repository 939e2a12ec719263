/* supportbot web chat widget: embed with one tag, no build step.
 *
 *   <script src="https://BOT/webchat/widget.js" data-title="Help" data-color="#0b7285"
 *           data-text-color="#ffffff" data-greeting="Hi!" data-position="right"
 *           data-placeholder="Ask us anything" data-streaming="true"></script>
 *
 * Settings come from the bot (GET BOT/webhooks/webchat/config, the YAML `webchat` channel);
 * data-* attributes override them. data-mode="page" fills the page instead (the bot's own
 * page at BOT/ is this widget). Replies stream over BOT/webhooks/webchat/ws and fall back to
 * POST BOT/webhooks/webchat. The visitor's session token (from POST
 * BOT/webhooks/webchat/session, renewed before it expires) lives in this site's
 * localStorage; the conversation comes from GET BOT/webhooks/webchat/history, so a reload
 * (or another device of an identified customer) continues it. An identified customer:
 * data-user-id, data-user-hash (HMAC-SHA256 of the id under the channel's identity_secret,
 * computed by the site's server) and data-user-name, data-user-email, ... (docs/channels.md).
 * Text from the bot, agents and customers is only ever set as text; links in answers are
 * built as elements, http(s) only. bot serve sends widget-text.js (elements, links, times),
 * widget-session.js (the session token, the bot's settings) and this file as one script.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src || document.getElementById("supportbot-webchat")) return;
  var base = script.src.replace(/\/webchat\/widget\.js([?#].*)?$/, "");
  var data = script.dataset;
  var HISTORY_LIMIT = 50, TYPING_SHOWN_MS = 6000;
  var QUIET_KINDS = /^(handoff|handback|feedback|agent|agent_joined|agent_left|agent_typing|greeting)$/;
  var pageMode = data.mode === "page";
  var THUMB = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.5-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z"/></svg>';

  var visit = supportbotVisit(base, data, function () {  // widget-session.js
    history = [];
    store.set("history", history);
  });
  var store = visit.store, ensureSession = visit.ensureSession, authorized = visit.authorized;
  var config = visit.config, loadConfig = visit.loadConfig;

  var host, root, launcher, panel, log, status, handoff, form, input, greetingNode, confirmRow;
  var ws = null, wsReady = false, wsFailures = 0, awaiting = false, current = null, typingTimer = null;
  var history = store.get("history", []);
  if (!Array.isArray(history)) history = [];

  function build() {
    host = el("div", { id: "supportbot-webchat", "data-transport": "http", "data-mode": pageMode ? "page" : "widget" });
    host.style.setProperty("--sb-color", config.color);
    host.style.setProperty("--sb-text", config.text_color);
    root = host.attachShadow({ mode: "open" });
    var css = el("link", { rel: "stylesheet", href: base + "/webchat/widget.css" });
    host.style.visibility = "hidden";  // until styled
    css.onload = css.onerror = function () { host.style.visibility = ""; host.setAttribute("data-ready", "true"); };
    root.appendChild(css);
    launcher = el("button", { type: "button", class: "launcher " + config.position,
      "aria-expanded": "false", "aria-controls": "sb-panel", "aria-label": "Open chat: " + config.title });
    launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
    panel = el(pageMode ? "main" : "section", { id: "sb-panel", class: "panel " + (pageMode ? "page" : config.position),
      "aria-labelledby": "sb-title" });
    if (!pageMode) { panel.setAttribute("role", "dialog"); panel.setAttribute("aria-modal", "false"); panel.hidden = true; }
    var header = el("header");
    header.appendChild(el(pageMode ? "h1" : "h2", { id: "sb-title" }, config.title));
    var tools = el("div", { class: "tools" });
    var end = el("button", { type: "button", class: "end" }, "End chat");
    tools.appendChild(end);
    var close = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "×");
    if (!pageMode) tools.appendChild(close);
    header.appendChild(tools);
    log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
      "aria-label": "Conversation", tabindex: "0" });
    status = el("div", { class: "status", role: "status", "aria-live": "polite" });
    confirmRow = el("div", { class: "confirm", role: "group", "aria-label": "End this chat?" });
    confirmRow.appendChild(el("span", {}, "End this chat?"));
    var yes = el("button", { type: "button", class: "yes" }, "End chat");
    var no = el("button", { type: "button" }, "Keep chatting");
    confirmRow.appendChild(yes);
    confirmRow.appendChild(no);
    confirmRow.hidden = true;
    handoff = el("div", { class: "handoff", role: "status" }, "You're being connected to a person");
    handoff.hidden = !store.get("handoff", false);
    form = el("form", { "aria-label": "Send a message" });
    form.appendChild(el("label", { for: "sb-input", class: "sr-only" }, "Your message"));
    input = el("input", { id: "sb-input", type: "text", autocomplete: "off", maxlength: "4000",
      placeholder: config.placeholder });
    form.appendChild(input);
    form.appendChild(el("button", { type: "submit", class: "send" }, "Send"));
    [header, log, handoff, status, confirmRow, form].forEach(function (n) { panel.appendChild(n); });
    root.appendChild(panel);
    if (!pageMode) root.appendChild(launcher);
    (pageMode && script.parentNode !== document.head ? script.parentNode : document.body).appendChild(host);

    launcher.addEventListener("click", function () { setOpen(panel.hidden, true); });
    close.addEventListener("click", function () { setOpen(false, true); });
    end.addEventListener("click", function () { confirmRow.hidden = false; yes.focus(); });
    no.addEventListener("click", function () { confirmRow.hidden = true; input.focus(); });
    yes.addEventListener("click", endChat);
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !pageMode) { event.preventDefault(); setOpen(false, true); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      send(text);
    });

    showAll();
    if (pageMode || store.get("open", false)) setOpen(true, pageMode);  // no focus move on page load
    if (!visit.isAvailable()) setStatus("This chat isn't available on this website.");
    else ensureSession(false).then(greet).then(loadHistory, function () { /* sending reports it */ });
    connect();
  }

  function greet(s) {
    var name = s && s.user && s.user.name;
    if (name && config.greeting_identified && greetingNode) greetingNode.querySelector(".text").textContent = config.greeting_identified.replace(/\{name\}/g, name);
    return s;
  }

  function showAll() {
    log.textContent = "";
    greetingNode = config.greeting ? addMessage({ role: "bot", kind: "greeting", text: config.greeting }, false) : null;
    if (visit.current()) greet(visit.current());
    history.forEach(function (item, i) { addMessage(item, false, i === history.length - 1); });
  }

  function loadHistory() {
    // The server's record of this conversation (another tab or device may have added to it).
    return authorized("/webhooks/webchat/history").then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (!body || awaiting || current) return;
        var cached = history;
        history = body.messages.slice(-HISTORY_LIMIT).map(function (m) {
          var seen = cached.filter(function (c) { return c.role === m.role && c.text === m.text; })[0];
          return Object.assign({}, m, seen ? { buttons: seen.buttons, rating: seen.rating, chosen: seen.chosen } : {});
        });
        store.set("history", history);
        setAgent(body.agent || null);
        setHandoff(!!body.handoff && !body.agent);
        showAll();
      }).catch(function () { /* the cached transcript stays */ });
  }

  function endChat() {
    confirmRow.hidden = true;
    authorized("/webhooks/webchat/end", { method: "POST" }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      history = [];
      store.set("history", history);
      setAgent(null);
      setHandoff(false);
      showAll();
      addMessage({ role: "event", text: "You ended the chat. Write below to start a new one." }, false);
      input.focus();
    }).catch(function () { showError("The chat could not be ended. Please try again."); });
  }

  function setOpen(open, moveFocus) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + config.title);
    if (!pageMode) store.set("open", open);
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

  function addMessage(item, save, live) {
    item.ts = item.ts || Date.now() / 1000;
    var who = item.role === "user" ? "You" : item.role === "error" ? "Problem" :
      item.role === "agent" ? item.agent || "Agent" : config.title;
    var node = el("div", { class: "msg " + item.role });
    if (item.role === "agent") node.appendChild(el("span", { class: "name" }, who));
    else if (item.role !== "event") node.appendChild(el("span", { class: "sr-only" }, who + ": "));
    var text = el("span", { class: "text" });
    if (item.role === "bot" || item.role === "agent") text.appendChild(linked(item.text || ""));
    else text.textContent = item.text;
    node.appendChild(text);
    log.appendChild(node);
    finish(node, item);
    if (item.buttons) addButtons(item, live);
    if (save) remember(item);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function finish(node, item) {
    // Sources, the time, and thumbs under a bot answer.
    if (item.citations && item.citations.length) addSources(node, item.citations);
    if (item.role === "event" || item.role === "error" || item.kind === "greeting") return;
    var foot = el("div", { class: "foot" });
    foot.appendChild(el("time", { datetime: new Date(item.ts * 1000).toISOString() }, clock(item.ts)));
    if (item.role === "bot" && !QUIET_KINDS.test(item.kind || "")) foot.appendChild(thumbs(item));
    node.appendChild(foot);
  }

  function thumbs(item) {
    var group = el("span", { class: "thumbs", role: "group", "aria-label": "Was this helpful?" });
    [["up", "Helpful"], ["down", "Not helpful"]].forEach(function (t) {
      var b = el("button", { type: "button", "data-rating": t[0], "aria-label": t[1], title: t[1],
        "aria-pressed": String(item.rating === t[0]) });
      b.innerHTML = THUMB;  // a constant icon, never data
      b.addEventListener("click", function () { rate(item, t[0], group); });
      group.appendChild(b);
    });
    return group;
  }

  function rate(item, rating, group) {
    authorized("/webhooks/rest/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rating: rating, reply_text: item.text }) }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      item.rating = rating;
      store.set("history", history);
      group.querySelectorAll("button").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.getAttribute("data-rating") === rating));
      });
      setStatus("Thank you for the feedback.");
    }).catch(function () { setStatus("The feedback could not be sent."); });
  }

  function addSources(node, citations) {
    var box = el("div", { class: "sources" });
    box.appendChild(el("span", {}, "Sources:"));
    var list = el("ul");
    citations.forEach(function (c) {
      var li = el("li");
      var label = c.title || c.passage_id;
      if (/^https?:\/\//i.test(c.source || "")) {
        li.appendChild(el("a", { href: c.source, target: "_blank", rel: "noopener noreferrer" }, label));
      } else {
        li.textContent = label;
      }
      list.appendChild(li);
    });
    box.appendChild(list);
    node.appendChild(box);
  }

  function settleButtons() {  // earlier suggestions cannot be chosen any more
    log.querySelectorAll(".buttons button").forEach(function (b) { b.disabled = true; });
  }

  function addButtons(item, live) {
    if (!item.buttons || !item.buttons.length) return;
    var group = el("div", { class: "buttons", role: "group", "aria-label": "Suggested replies" });
    item.buttons.forEach(function (b) {
      var button = el("button", { type: "button", "aria-pressed": String(item.chosen === b.title) }, b.title);
      button.disabled = !live || !!item.chosen;
      button.addEventListener("click", function () {
        item.chosen = b.title;
        button.setAttribute("aria-pressed", "true");
        send(b.payload || b.title, b.title);
        input.focus();
      });
      group.appendChild(button);
    });
    log.appendChild(group);
  }

  function showReply(reply) {
    if (reply.kind === "agent_typing") { showTyping(reply.agent || agent); return; }
    awaiting = false;
    clearTyping();
    var citations = (reply.citations || []).map(function (c) {
      return { passage_id: c.passage_id, title: c.title, source: c.source };
    });
    var person = reply.agent;  // who wrote it (agent kinds)
    var quiet = reply.kind === "handoff" && agent;  // "passed on to our team" while a person is here
    var role = reply.kind === "agent" ? "agent" : /^agent_(joined|left)$/.test(reply.kind) ? "event" : "bot";
    var item = { role: role, text: reply.text, citations: citations, kind: reply.kind };
    if (role === "agent") item.agent = person || agent;  // queued ones name nobody
    if (reply.buttons && reply.buttons.length) item.buttons = reply.buttons;
    if (current) {
      current.remove();  // the streamed text: shown again below as the finished message
      current = null;
    }
    if (!quiet) addMessage(item, role !== "event", true);
    if (reply.kind === "agent" || reply.kind === "agent_joined") setAgent(person || agent || "Agent");
    else if (reply.kind === "agent_left" || !reply.handoff) setAgent(null);
    setHandoff(!!reply.handoff && !agent);  // a person is here: no "being connected" banner
    log.setAttribute("aria-busy", "false");
    setStatus("");
  }

  function showTyping(name) {
    setStatus((name || "Someone") + " is typing…");
    clearTimeout(typingTimer);
    typingTimer = setTimeout(clearTyping, TYPING_SHOWN_MS);
  }

  function clearTyping() {
    if (typingTimer) { clearTimeout(typingTimer); typingTimer = null; setStatus(""); }
  }

  function showError(text) {
    awaiting = false;
    if (current) { current.remove(); current = null; }
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
        current = el("div", { class: "msg bot streaming" });
        current.appendChild(el("span", { class: "text" }));
        log.appendChild(current);
      }
      current.querySelector(".text").textContent += frame.text;
      log.scrollTop = log.scrollHeight;
    } else if (frame.type === "reply") {
      showReply(frame);
    } else if (frame.type === "error") {
      showError(frame.error);
    }
  }

  function connect() {
    if (!config.streaming || !visit.isAvailable() || !window.WebSocket || ws) return;
    ensureSession(false).then(openSocket, function () { /* HTTP will report it */ });
  }

  function openSocket(s) {
    if (ws) return;
    var socket = new WebSocket(base.replace(/^http/, "ws") + "/webhooks/webchat/ws?token=" +
                               encodeURIComponent(s.token));
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
    return ensureSession(retried).then(function (s) {
      return fetch(base + "/webhooks/webchat", {
        method: "POST", mode: "cors",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + s.token },
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
    settleButtons();
    store.set("history", history);
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
