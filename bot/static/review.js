/* The review page: list the bot's answers, mark them (docs/lead.md). Customer and bot text
   is only ever set with textContent. */
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = document.getElementById("answers");
  const summary = document.getElementById("summary");
  const error = document.getElementById("error");
  const form = document.getElementById("filters");
  const PAGE = 50;
  let offset = 0;
  let total = 0;
  const MARKS = { right: "right", wrong: "wrong", should_not_answer: "should not have answered" };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    for (const name of ["from", "to", "below"]) if (data.get(name)) params.set(name, data.get(name));
    const show = data.getAll("show");
    if (show.length) params.set("show", show.join(","));
    params.set("offset", String(offset));
    return params;
  }

  async function call(path, options) {
    const response = await fetch(path, { credentials: "same-origin", ...options });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) { location.href = "/desk/sign-in"; throw new Error("signed out"); }
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  function markLine(row) {
    const line = el("span", { class: "marked" + (row.mark ? " " + row.mark.mark : ""), "data-role": "mark" });
    if (!row.mark) { line.textContent = "not marked"; line.classList.add("muted"); return line; }
    let text = `marked ${MARKS[row.mark.mark] || row.mark.mark}`;
    if (row.mark.answer) text += ` → ${row.mark.answer}`;
    if (row.mark.by) text += ` by ${row.mark.by}`;
    line.textContent = text;
    return line;
  }

  async function save(item, row, mark, answer) {
    error.textContent = "";
    const body = { key: row.key, ts: row.ts, mark };
    if (answer) body.answer = answer;
    try {
      const saved = await call("/desk/api/review/mark", {
        method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body) });
      row.mark = saved.mark;
      item.querySelector("[data-role=mark]").replaceWith(markLine(row));
      const picker = item.querySelector(".picker");
      if (picker) picker.remove();
      summary.textContent = `Marked ${MARKS[mark]}.`;
    } catch (exc) { error.textContent = exc.message; }
  }

  function picker(item, row) {
    if (item.querySelector(".picker")) return;
    const box = el("div", { class: "picker" });
    const n = list.children.length + Math.random().toString(36).slice(2, 6);
    const search = el("input", { type: "search", id: `find-${n}`, placeholder: "Search the FAQ's entries",
                                 "aria-label": "Search the FAQ's entries" });
    const choice = el("select", { "aria-label": "The entry that answers the question", "data-role": "entry" });
    const saveButton = el("button", { type: "button", class: "primary" }, "Save: wrong, this entry answers it");
    async function find() {
      try {
        const found = await call("/desk/api/review/entries?q=" + encodeURIComponent(search.value));
        choice.replaceChildren(...found.entries.map(e => el("option", { value: e.id }, `${e.title} (${e.id})`)),
                               el("option", { value: "none" }, "none: no entry answers it"));
      } catch (exc) { error.textContent = exc.message; }
    }
    let timer = 0;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(find, 200); });
    saveButton.addEventListener("click", () => save(item, row, "wrong", choice.value));
    box.append(search, choice, saveButton);
    item.append(box);
    find();
    search.focus();
  }

  function render(row) {
    const item = el("li", { class: "answer", "data-kind": row.kind });
    const meta = el("div", { class: "meta" });
    meta.append(el("span", {}, new Date(row.ts * 1000).toLocaleString()), el("span", { class: "tag" }, row.channel),
                el("span", { class: "tag" + (row.abstained ? " bad" : "") }, row.kind));
    if (row.confidence !== null) meta.append(el("span", {}, `confidence ${row.confidence.toFixed(2)}`));
    if (row.rating) meta.append(el("span", { class: "tag " + (row.rating === "down" ? "bad" : "good") },
                                   row.rating === "down" ? "thumbs down" : "thumbs up"));
    if (row.handoff) meta.append(el("span", { class: "tag bad" }, "handed over"));
    meta.append(markLine(row));
    const asked = el("p", { class: "said", "data-role": "question" });
    asked.append(el("b", {}, "Customer"), document.createTextNode(" " + row.question));
    const answered = el("p", { class: "said", "data-role": "answer" });
    answered.append(el("b", {}, "Bot"), document.createTextNode(" " + row.answer));
    item.append(meta, asked, answered);
    if (row.cited.length) {
      item.append(el("p", { class: "said muted" }, "Cited: " + row.cited.map(c => `${c.title} (${c.id})`).join("; ")));
    }
    const actions = el("div", { class: "actions", role: "group", "aria-label": "Mark this answer" });
    const right = el("button", { type: "button", class: "ghost", "data-mark": "right" }, "Right");
    const wrong = el("button", { type: "button", class: "ghost", "data-mark": "wrong" }, "Wrong…");
    const not = el("button", { type: "button", class: "ghost", "data-mark": "should_not_answer" },
                   "Should not have answered");
    right.addEventListener("click", () => save(item, row, "right"));
    not.addEventListener("click", () => save(item, row, "should_not_answer"));
    wrong.addEventListener("click", () => picker(item, row));
    actions.append(right, wrong, not);
    item.append(actions);
    return item;
  }

  async function load() {
    error.textContent = "";
    try {
      const found = await call("/desk/api/review/answers?" + query().toString());
      total = found.total;
      if (!form.elements.from.value) form.elements.from.value = found.from;
      if (!form.elements.to.value) form.elements.to.value = found.to;
      list.replaceChildren(...found.answers.map(render));
      summary.textContent = total ? `${offset + 1}–${offset + found.answers.length} of ${total} answers, ${found.from} to ${found.to}`
                                  : `No answers match, ${found.from} to ${found.to}.`;
      document.getElementById("newer").disabled = offset === 0;
      document.getElementById("older").disabled = offset + PAGE >= total;
    } catch (exc) { error.textContent = exc.message; summary.textContent = ""; }
  }

  form.addEventListener("submit", event => { event.preventDefault(); offset = 0; load(); });
  document.getElementById("newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  document.getElementById("older").addEventListener("click", () => { offset += PAGE; load(); });
  load();
})();
