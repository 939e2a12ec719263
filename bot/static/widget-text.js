/* supportbot web chat widget, its text part: elements, links and times. bot serve sends it
 * joined with widget-session.js and widget.js as one script (/webchat/widget.js). Text is
 * only ever set as text; links are built as elements, http(s) only. */

function el(tag, attrs, text) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
  if (text !== undefined) node.textContent = text;
  return node;
}

var LINK = /\[([^\]\n]{1,200})\]\((https?:\/\/[^\s()<>]+)\)|(https?:\/\/[^\s<>"'()\[\]]+)/gi;

function linked(text) {
  // ``text`` as text nodes and <a> elements for its http(s) links ([label](url) or bare).
  var out = document.createDocumentFragment(), at = 0, m;
  LINK.lastIndex = 0;
  while ((m = LINK.exec(text))) {
    var url = m[2] || m[3], label = m[1] || url, end = m.index + m[0].length;
    if (m[3]) {
      var trail = /[.,;:!?]+$/.exec(url);
      if (trail) { url = url.slice(0, -trail[0].length); label = url; end -= trail[0].length; }
    }
    out.appendChild(document.createTextNode(text.slice(at, m.index)));
    out.appendChild(el("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, label));
    at = end;
    LINK.lastIndex = end;
  }
  out.appendChild(document.createTextNode(text.slice(at)));
  return out;
}

function clock(ts) {
  var d = new Date((ts || Date.now() / 1000) * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
