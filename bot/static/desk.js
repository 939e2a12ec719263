/* supportbot desk: the inbox of the people behind the bot (docs/desk.md).
 *
 * Lists come from GET /desk/api/queues, a conversation from GET /desk/api/conversation;
 * actions are POSTs carrying the sign-in's CSRF token (X-CSRF-Token). The server pushes
 * changes over the WebSocket /desk/socket; nothing here polls. Customer text is only ever
 * set as textContent.
 */
(function () {
  "use strict";
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var me = document.querySelector("meta[name=desk-agent]").content;
  var $ = function (id) { return document.getElementById(id); };
  var current = null;      // the open conversation's id
  var shown = null;        // its last loaded data
  var known = {};          // ids in the queues, to tell a new handoff from an update
  var socket = null, failures = 0, refreshing = null, typedAt = 0, TYPING_EVERY_MS = 3000;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function when(ts) {
    if (!ts) return "";
    var d = new Date(ts * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function ago(ts) {
    var s = Math.max(0, Date.now() / 1000 - ts);
    if (s < 60) return "just now";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    return Math.floor(s / 3600) + " h ago";
  }

  function announce(text) { $("announce").textContent = text; }

  function request(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: {} };
    if (body) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
    return fetch(path, options).then(function (res) {
      if (res.status === 401) { window.location.assign("/desk/sign-in"); throw new Error("signed out"); }
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) throw new Error(data.error || "HTTP " + res.status);
        return data;
      });
    });
  }

  /* ---- queues ---- */

  function refreshQueues() {
    if (refreshing) return refreshing;
    refreshing = request("GET", "/desk/api/queues").then(function (data) {
      var fresh = {};
      ["waiting", "mine", "others"].forEach(function (name) {
        var list = document.querySelector("[data-queue=" + name + "]");
        list.textContent = "";
        data[name].forEach(function (row) {
          fresh[row.id] = true;
          list.appendChild(queueItem(row, name));
        });
        if (!data[name].length) list.appendChild(el("li", "none", name === "waiting" ? "Nobody is waiting." : "None."));
        document.querySelector("[data-count=" + name + "]").textContent = data[name].length;
      });
      known = fresh;
    }).catch(function (err) { problem(err.message); }).then(function () { refreshing = null; });
    return refreshing;
  }

  function queueItem(row, queue) {
    var li = el("li");
    var button = el("button", "row" + (row.id === current ? " selected" : ""));
    button.type = "button";
    button.setAttribute("data-id", row.id);
    if (row.id === current) button.setAttribute("aria-current", "true");
    var top = el("span", "row-top");
    top.appendChild(el("span", "who", customerName(row)));
    top.appendChild(el("span", "channel", row.channel));
    button.appendChild(top);
    button.appendChild(el("span", "last", row.last_message || "(no message yet)"));
    var meta = row.reason + " · " + ago(row.since) + (queue === "others" ? " · " + row.agent : "");
    button.appendChild(el("span", "row-meta", meta));
    button.addEventListener("click", function () { openConversation(row.id, true); });
    li.appendChild(button);
    return li;
  }

  /* ---- one conversation ---- */

  function customerName(row) {  // a verified customer's name, else the sender id
    return row.user && row.user.name ? row.user.name + " ✓" : row.sender;
  }

  function openConversation(id, moveFocus) {
    current = id;
    window.location.hash = encodeURIComponent(id);
    document.querySelectorAll(".row").forEach(function (b) {
      var on = b.getAttribute("data-id") === id;
      b.classList.toggle("selected", on);
      if (on) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    });
    return request("GET", "/desk/api/conversation?id=" + encodeURIComponent(id)).then(function (data) {
      if (current !== id) return;
      var fresh = !shown || shown.id !== id;
      shown = data;
      render(data);
      loadAssist(id, fresh);
      if (moveFocus) $("c-name").focus();
    }).catch(function (err) {
      if (current !== id) return;
      shown = null;
      showEmpty(/^taken by /.test(err.message) ? "This conversation was " + err.message + "."
                                                : err.message);
    });
  }

  function showEmpty(message) {
    $("open").hidden = true;
    $("empty").hidden = false;
    $("c-title").textContent = message || "No conversation open";
  }

  function render(data) {
    $("empty").hidden = true;
    $("open").hidden = false;
    $("c-name").textContent = customerName(data);
    renderUser(data.user);
    var status = data.agent ? (data.agent === me ? "with you" : "with " + data.agent) : "waiting";
    $("c-meta").textContent = data.channel + " · " + status + " · handed off " + ago(data.since) +
      " (" + data.reason + ")";
    $("c-summary").textContent = data.summary.text;
    $("take").hidden = !!data.agent;
    $("release").hidden = data.agent !== me;
    var log = $("transcript");
    var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.textContent = "";
    data.transcript.forEach(function (item) { log.appendChild(transcriptItem(item)); });
    if (atEnd || log.dataset.id !== data.id) log.scrollTop = log.scrollHeight;
    log.dataset.id = data.id;
  }

  function renderUser(user) {
    // A verified customer's attributes (the host site signed who they are).
    var box = $("c-user");
    box.textContent = "";
    box.hidden = !user;
    if (!user) return;
    box.appendChild(el("span", "user-badge", "Verified customer"));
    var list = el("dl");
    Object.keys(user).forEach(function (k) {
      list.appendChild(el("dt", "", k));
      list.appendChild(el("dd", "", user[k]));
    });
    box.appendChild(list);
  }

  /* ---- agent assist ---- */

  var assisted = null;  // what the shown suggestions are for: id and question
  function loadAssist(id, fresh) {
    var box = $("assist-list");
    if (fresh) { box.textContent = ""; assisted = null; $("assist-for").textContent = "Loading…"; }
    request("GET", "/desk/api/assist?id=" + encodeURIComponent(id)).then(function (data) {
      var about = id + "\n" + data.question;
      if (current !== id || about === assisted) return;  // unchanged: keep them as they are
      assisted = about;
      box.textContent = "";
      $("assist-for").textContent = data.question ? "For: “" + data.question + "”" : "No customer message yet.";
      if (data.question && !data.suggestions.length) box.appendChild(el("li", "none", "Nothing in the FAQ matches."));
      data.suggestions.forEach(function (s) { box.appendChild(suggestion(s)); });
    }).catch(function () { if (current === id) $("assist-for").textContent = "No suggestions."; });
  }

  function suggestion(s) {
    var li = el("li", "suggestion" + (s.audience === "agents" ? " for-agents" : ""));
    var head = el("div", "s-head");
    head.appendChild(el("span", "s-title", s.title));
    head.appendChild(el("span", "s-score", Math.round(s.score * 100) + "%"));
    li.appendChild(head);
    li.appendChild(el("p", "s-text", s.text));
    var cite = el("div", "s-cite");
    cite.appendChild(el("span", "", "Source: " + s.id + " · "));
    cite.appendChild(sourceLink(s.source, s.source));
    if (s.audience === "agents") cite.appendChild(el("span", "s-agents", " · written for the team: reword before sending"));
    li.appendChild(cite);
    var insert = el("button", "ghost insert", "Insert");
    insert.type = "button";
    insert.setAttribute("aria-label", "Insert into the reply: " + s.title);
    insert.addEventListener("click", function () {
      document.querySelector("input[name=mode][value=reply]").checked = true;
      updateMode();
      var box = $("text");
      box.value = box.value.trim() ? box.value.replace(/\s*$/, "\n\n") + s.text : s.text;
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
      announce("Suggestion inserted; edit it and send.");
    });
    li.appendChild(insert);
    return li;
  }

  function typing() {
    // Tell the customer we are typing a reply (at most every few seconds, only when ours).
    if (mode() !== "reply" || !shown || shown.agent !== me || !$("text").value.trim()) return;
    var now = Date.now();
    if (now - typedAt < TYPING_EVERY_MS) return;
    typedAt = now;
    request("POST", "/desk/api/typing", { id: current }).catch(function () { /* not essential */ });
  }

  function label(item) {
    if (item.role === "user") return "Customer";
    if (item.role === "agent") return (item.agent || "Agent") + " (agent)";
    if (item.role === "note") return "Private note · " + (item.agent || "");
    return "Bot" + (item.kind ? " · " + item.kind : "");
  }

  function transcriptItem(item) {
    if (item.role === "bot" && item.kind === "handoff") {  // the bot's "passed on" notes
      var line = el("div", "item event");
      line.appendChild(el("span", "item-text", item.text));
      line.appendChild(el("time", "item-time", " · " + when(item.ts)));
      return line;
    }
    var box = el("div", "item " + item.role);
    var head = el("div", "item-head");
    head.appendChild(el("span", "item-who", label(item)));
    head.appendChild(el("time", "item-time", when(item.ts)));
    box.appendChild(head);
    box.appendChild(el("div", "item-text", item.text));
    if (item.citations && item.citations.length) box.appendChild(citations(item.citations));
    if (item.decision) box.appendChild(decision(item.decision));
    return box;
  }

  function sourceLink(source, text) {  // a link for an http(s) source, else plain text
    if (!/^https?:\/\//i.test(source || "")) return el("span", "", text);
    var a = el("a", "", text);
    a.setAttribute("href", source);
    a.setAttribute("target", "_blank");
    a.setAttribute("rel", "noopener noreferrer");
    return a;
  }

  function citations(list) {
    var wrap = el("div", "cites");
    wrap.appendChild(el("span", "cites-label", "Cited:"));
    var ul = el("ul");
    list.forEach(function (c) {
      var li = el("li");
      li.appendChild(sourceLink(c.source, c.title));
      li.appendChild(el("span", "cite-id", " " + c.id + (c.audience === "agents" ? " · for agents" : "")));
      ul.appendChild(li);
    });
    wrap.appendChild(ul);
    return wrap;
  }

  function decision(d) {
    var details = el("details", "decision");
    var best = (d.candidates || [])[0];
    var summary = "Decision: " + (d.action || "?") + (best ? " · p=" + best.probability : "") +
      (d.threshold !== undefined ? " (threshold " + d.threshold + ")" : "");
    details.appendChild(el("summary", "", summary));
    var table = el("table");
    var head = el("tr");
    ["Candidate", "P(right)", "Evidence"].forEach(function (h) { head.appendChild(el("th", "", h)); });
    table.appendChild(head);
    (d.candidates || []).forEach(function (c) {
      var tr = el("tr");
      tr.appendChild(el("td", "", c.kind + ": " + c.target));
      tr.appendChild(el("td", "", c.probability));
      var features = Object.keys(c.features || {}).map(function (k) {
        var v = c.features[k];
        return k + " " + (typeof v === "number" ? Math.round(v * 1000) / 1000 : v);
      }).join(", ");
      tr.appendChild(el("td", "features", features));
      table.appendChild(tr);
    });
    details.appendChild(table);
    return details;
  }

  /* ---- actions ---- */

  function problem(text) { $("problem").textContent = text || ""; }

  function act(path, body) {
    problem("");
    return request("POST", path, body).then(function (data) {
      refreshQueues();
      if (current) openConversation(current, false);
      return data;
    }, function (err) { problem(err.message); throw err; });
  }

  function mode() { return document.querySelector("input[name=mode]:checked").value; }

  function updateMode() {
    var note = mode() === "note";
    $("send").textContent = note ? "Add note" : "Send reply";
    $("text").placeholder = note ? "A note for the team; the customer never sees it… (Ctrl+Enter adds)"
                                 : "Write a reply… (Ctrl+Enter sends)";
    $("composer").classList.toggle("noting", note);
  }

  function send(event) {
    event.preventDefault();
    var text = $("text").value.trim();
    if (!current || !text) { problem(text ? "" : "Write something first."); return; }
    var note = mode() === "note";
    $("send").disabled = true;
    act(note ? "/desk/api/note" : "/desk/api/reply", { id: current, text: text }).then(function () {
      $("text").value = "";
      announce(note ? "Note added." : "Reply sent.");
    }, function () {}).then(function () { $("send").disabled = false; $("text").focus(); });
  }

  /* ---- live updates ---- */

  function setLive(state, text) {
    var live = $("live");
    live.setAttribute("data-state", state);
    live.textContent = text;
  }

  function onChange(frame) {
    var isNew = !known[frame.id] && frame.what === "message";
    refreshQueues().then(function () {
      if (isNew && known[frame.id]) announce("A new conversation is waiting.");
    });
    if (frame.id === current && frame.what === "ended") {
      current = null;
      shown = null;
      showEmpty("The customer ended the chat.");
      announce("The customer ended the chat.");
    } else if (frame.id === current || (frame.what === "resync" && current)) {
      openConversation(current, false);
      if (frame.what === "message") announce("New message from the customer.");
    }
    if (frame.what === "taken" && frame.agent === me && frame.id !== current && !current) {
      announce("A conversation was assigned to you.");
    }
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/desk/socket";
    socket = new WebSocket(url);
    socket.onopen = function () { failures = 0; setLive("live", "Live"); refreshQueues(); };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "changed") onChange(frame);
      else if (frame.type === "presence") $("online").textContent = "Online: " + frame.online.join(", ");
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.reason === "signed out") return;
      failures += 1;
      setLive("down", "Reconnecting…");
      setTimeout(connect, Math.min(30000, 500 * Math.pow(2, failures)));
    };
  }

  function start() {
    $("take").addEventListener("click", function () { act("/desk/api/take", { id: current }); });
    $("release").addEventListener("click", function () { act("/desk/api/release", { id: current }); });
    $("resolve").addEventListener("click", function () {
      act("/desk/api/resolve", { id: current }).then(function () {
        current = null; showEmpty("Resolved. The bot answers this customer again.");
        $("c-title").focus();
      }, function () {});
    });
    $("composer").addEventListener("submit", send);
    document.querySelectorAll("input[name=mode]").forEach(function (r) { r.addEventListener("change", updateMode); });
    $("text").addEventListener("input", typing);
    $("text").addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send(event);
    });
    $("sign-out").addEventListener("click", function () {
      request("POST", "/desk/sign-out").then(function () {
        if (socket) socket.close();
        window.location.assign("/desk/sign-in");
      }, function (err) { problem(err.message); });
    });
    refreshQueues();
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (id) openConversation(id, false);
    connect();
  }

  start();
})();
