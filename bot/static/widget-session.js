/* supportbot web chat widget, its first part: the visitor's session token and the bot's
 * settings. bot serve sends it joined with widget.js as one script (/webchat/widget.js),
 * both inside one function, so nothing is added to the host page's globals.
 *
 * supportbotVisit(base, data, onNewSender): base is the bot's address, data the widget
 * tag's data-* attributes, onNewSender() is called when the server hands out a session of
 * another sender (the stored conversation no longer applies).
 */
function supportbotVisit(base, data, onNewSender) {
  "use strict";
  var prefix = "supportbot:" + base + ":";
  var RENEW_BEFORE_S = 24 * 3600;

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

  function identity() {  // the host page's signed customer, if any: {id, hash, name, ...}
    if (!data.userId || !data.userHash) return null;
    var user = {};
    Object.keys(data).forEach(function (k) {
      if (/^user[A-Z]/.test(k)) {
        user[k.slice(4).replace(/[A-Z]/g, function (c) { return "_" + c.toLowerCase(); }).slice(1)] = data[k];
      }
    });
    return user;
  }

  var session = store.get("session", null);  // {token, sender, expires_at, user?}
  var pendingSession = null;
  var wanted = identity();
  if (session && (wanted ? !session.user || session.user.id !== wanted.id : !!session.user)) session = null;

  function ensureSession(fresh) {
    // A valid session token: the stored one, renewed when close to expiring, or a new one
    // (for the page's identified customer when there is one; refused: anonymous).
    var now = Date.now() / 1000;
    if (!fresh && session && session.token && session.expires_at - now > RENEW_BEFORE_S) {
      return Promise.resolve(session);
    }
    if (pendingSession) return pendingSession;
    function ask(token, user) {
      var headers = token ? { Authorization: "Bearer " + token } : {};
      if (user) headers["Content-Type"] = "application/json";
      return fetch(base + "/webhooks/webchat/session", { method: "POST", mode: "cors", headers: headers,
        body: user ? JSON.stringify({ user: user }) : undefined });
    }
    var old = fresh ? null : session && session.token;
    pendingSession = ask(old, wanted).then(function (res) {
      if (res.status === 401 && old) return ask(null, wanted);
      return res;
    }).then(function (res) {
      if ((res.status === 400 || res.status === 403) && wanted) {
        res.json().then(function (b) { console.warn("supportbot: identity refused:", b.error); }, function () {});
        wanted = null;  // stays anonymous
        return ask(null, null);
      }
      return res;
    }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (body) {
      if (!session || session.sender !== body.sender) onNewSender();
      session = body;
      store.set("session", session);
      pendingSession = null;
      return session;
    }, function (err) { pendingSession = null; throw err; });
    return pendingSession;
  }

  function authorized(path, options) {
    return ensureSession(false).then(function (s) {
      options = options || {};
      options.mode = "cors";
      options.headers = Object.assign({ Authorization: "Bearer " + s.token }, options.headers || {});
      return fetch(base + path, options);
    });
  }

  var config = {
    title: "Chat with us", greeting: "Hi! How can I help you today?",
    greeting_identified: "Hi {name}! How can I help you today?",
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
    if (data.greetingIdentified !== undefined) config.greeting_identified = data.greetingIdentified;
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

  return {
    store: store, ensureSession: ensureSession, authorized: authorized, config: config,
    loadConfig: loadConfig,
    isAvailable: function () { return available; },
    current: function () { return session; }
  };
}
