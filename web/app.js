// Sieve's chat page: streams /v1/agent/stream, renders citations, route and degradations.
// Conversations are server-side threads: the open one is `?thread=` in the address (a reload or a
// shared link reads it back from /v1/agent/threads/{id}); localStorage only lists their titles.
"use strict";

const $ = (selector) => document.querySelector(selector);
const narrow = matchMedia("(max-width: 700px)"); // the conversation list becomes a drawer (style.css)
const overlay = matchMedia("(max-width: 900px)"); // the citation covers the page (style.css)
const store = {
  get key() { return localStorage.getItem("sieve.key") || ""; },
  set key(value) { localStorage.setItem("sieve.key", value); },
  get threads() { return JSON.parse(localStorage.getItem("sieve.threads") || "[]"); },
  set threads(value) { localStorage.setItem("sieve.threads", JSON.stringify(value)); },
};
let current = null; // the open thread: {id, kb, title}
let citationOpener = null; // the link that opened the citation panel: focus goes back to it

function headers() {
  const h = { "Content-Type": "application/json" };
  if (store.key) h.Authorization = `Bearer ${store.key}`;
  return h;
}

function notice(text) {
  $("#notice").hidden = !text;
  $("#notice").textContent = text || "";
}

function askForKey() {
  if (!$("#key-dialog").open) $("#key-dialog").showModal();
}

async function errorMessage(response) {
  try { return (await response.json()).error.message; } catch { return `HTTP ${response.status}`; }
}

async function loadKnowledgeBases() {
  const response = await fetch("/v1/knowledge-bases", { headers: headers() });
  if (response.status === 401) { askForKey(); return; }
  if (!response.ok) { notice(await errorMessage(response)); return; }
  const { data } = await response.json();
  const select = $("#kb");
  select.replaceChildren(...data.map((kb) => new Option(`${kb.name} (${kb.documents})`, kb.name)));
  if (!data.length) notice("No knowledge base yet: create one and upload documents through the API.");
  if (current) select.value = current.kb;
}

// ---- rendering ---------------------------------------------------------------------------

function badge(cls, text) {
  const span = document.createElement("span");
  span.className = `badge ${cls}`;
  span.textContent = text;
  return span;
}

function sourceLink(citation, text) {
  // the chunk's signed link: a plain click shows the quote here, a new-tab click opens the chunk
  const link = document.createElement("a");
  link.href = citation.url;
  link.target = "_blank";
  link.rel = "noopener";
  link.textContent = text;
  return link;
}

function renderAnswer(element, text, turn) {
  // "[n]" becomes a link to citation n (once the citations arrived); everything else stays plain text
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const citation = turn.citations[Number(match[1]) - 1];
    if (!citation || !citation.url) continue;
    nodes.push(document.createTextNode(text.slice(last, match.index)));
    const link = sourceLink(citation, match[0]);
    link.className = "cite";
    link.dataset.n = match[1];
    link.setAttribute("aria-label", `source ${match[1]}: ${citation.filename}`);
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      openCitation(turn, Number(match[1]), link);
    });
    nodes.push(link);
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  element.replaceChildren(...nodes);
}

function openCitation(turn, n, opener) {
  const citation = turn.citations[n - 1];
  const page = citation.page ? ` · page ${citation.page}` : "";
  $("#citation-panel .source").textContent = `[${n}] ${citation.filename}${page}`;
  $("#citation-panel .quote").textContent = citation.quote;
  $("#citation-panel .open").href = citation.url;
  $("#citation-panel").hidden = false;
  citationOpener = opener;
  syncScrim();
  $("#close-citation").focus();
  showPageImage(citation, turn.kb);
}

function closeCitation() {
  if ($("#citation-panel").hidden) return;
  $("#citation-panel").hidden = true;
  syncScrim();
  if (citationOpener && citationOpener.isConnected) citationOpener.focus();
  citationOpener = null;
}

async function showPageImage(citation, kb) {
  // a chunk read from an image or a scan: the region of the page it came from (fetched with the key)
  const figure = $("#citation-panel .page");
  const img = figure.querySelector("img");
  figure.hidden = true;
  if (img.src) URL.revokeObjectURL(img.src);
  img.removeAttribute("src");
  if (!citation.page || !kb) return;
  const url = `/v1/knowledge-bases/${encodeURIComponent(kb)}/documents/${encodeURIComponent(citation.doc_id)}`
    + `/chunks/${encodeURIComponent(citation.chunk_id)}/image`;
  const asked = (showPageImage.asked = citation);
  const response = await fetch(url, { headers: headers() });
  if (!response.ok || showPageImage.asked !== asked) return; // another citation was opened meanwhile
  img.src = URL.createObjectURL(await response.blob());
  figure.hidden = false;
}

function addMessage(role) {
  const element = document.createElement("article");
  element.className = `msg ${role}`;
  if (role === "assistant") {
    element.innerHTML = '<div class="meta"></div><div class="rewrite"></div><div class="answer"></div><div class="sources"></div>';
  } else {
    element.innerHTML = '<div class="answer"></div>';
  }
  $("#messages").append(element);
  scrollToEnd();
  return element;
}

function scrollToEnd() {
  const messages = $("#messages");
  messages.scrollTop = messages.scrollHeight;
}

function renderTurn(turn) {
  addMessage("user").querySelector(".answer").textContent = turn.question;
  const element = addMessage("assistant");
  fillAssistant(element, turn);
  element.dataset.state = "done";
}

function fillAssistant(element, turn) {
  const meta = element.querySelector(".meta");
  meta.replaceChildren();
  if (turn.route) meta.append(badge("route", `route: ${turn.route}`));
  for (const flag of turn.degraded || []) meta.append(badge("degraded", `degraded: ${flag}`));
  if (turn.refused) meta.append(badge("refusal", "refused"));
  element.classList.toggle("refused", Boolean(turn.refused));
  const rewritten = turn.rewritten_query;
  const rewrite = rewritten && rewritten !== turn.question ? `searched for: ${rewritten}` : "";
  element.querySelector(".rewrite").textContent = rewrite;
  turn.citations = turn.citations || [];
  renderAnswer(element.querySelector(".answer"), turn.answer || "", turn);
  // each file once, linking its first cited chunk
  const files = new Map();
  for (const citation of turn.citations) {
    if (citation.url && !files.has(citation.filename)) files.set(citation.filename, citation);
  }
  const sources = element.querySelector(".sources");
  sources.replaceChildren();
  if (files.size) {
    sources.append("sources: ");
    [...files].forEach(([name, citation], i) => sources.append(...(i ? [", "] : []), sourceLink(citation, name)));
  }
}

function renderThreads() {
  const list = $("#thread-list");
  list.replaceChildren(...store.threads.map((thread) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = thread.title;
    button.title = `${thread.kb}: ${thread.title}`;
    if (current && thread.id === current.id) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => openThread(thread.id));
    item.append(button);
    return item;
  }));
}

function threadInAddress() {
  return new URLSearchParams(location.search).get("thread");
}

function putThreadInAddress(id, replace = false) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("thread", id);
  else url.searchParams.delete("thread");
  if (url.href !== location.href) history[replace ? "replaceState" : "pushState"](null, "", url);
}

async function openThread(id, { push = true } = {}) {
  closeCitation();
  if (narrow.matches) setSidebar(false);
  notice("");
  $("#messages").replaceChildren();
  if (push) putThreadInAddress(id);
  current = id ? { id, kb: "", title: "", ...store.threads.find((thread) => thread.id === id) } : null;
  renderThreads();
  if (!current) { $("#question").focus(); return; }
  const response = await fetch(`/v1/agent/threads/${encodeURIComponent(id)}`, { headers: headers() });
  if (current?.id !== id) return; // another conversation was opened meanwhile
  if (response.status === 401) { askForKey(); return; }
  if (!response.ok) {
    notice(response.status === 404 ? "This conversation is not on the server; ask to start a new one."
      : await errorMessage(response));
    current = null;
    putThreadInAddress(null, true);
    renderThreads();
    return;
  }
  const { turns } = await response.json();
  current.kb = turns[turns.length - 1].kb;
  current.title ||= turns[0].question.slice(0, 60);
  $("#kb").value = current.kb;
  turns.forEach(renderTurn);
  if (!store.threads.some((thread) => thread.id === id)) saveThread(); // a link from elsewhere: list it
}

function saveThread() {
  const threads = store.threads.filter((thread) => thread.id !== current.id);
  const { id, kb, title } = current;
  store.threads = [{ id, kb, title }, ...threads].slice(0, 50);
  renderThreads();
}

function newThreadId() {
  // crypto.randomUUID needs a secure context; a phone on the LAN reaches the server over plain http
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- layout ------------------------------------------------------------------------------

function sidebarOpen() {
  return narrow.matches ? document.body.classList.contains("drawer-open")
    : !document.body.classList.contains("sidebar-collapsed");
}

function setSidebar(open) {
  document.body.classList.toggle("drawer-open", narrow.matches && open);
  document.body.classList.toggle("sidebar-collapsed", !narrow.matches && !open);
  $("#menu").setAttribute("aria-expanded", String(open));
  syncScrim();
}

function syncScrim() {
  const drawer = narrow.matches && sidebarOpen();
  $("#scrim").hidden = !(drawer || (overlay.matches && !$("#citation-panel").hidden));
  // the open drawer is modal on a phone: Tab stays in it, and Escape or the scrim closes it
  document.querySelector("main").inert = drawer;
}

// ---- streaming ---------------------------------------------------------------------------

async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { type, data: JSON.parse(data.join("\n")) };
    }
  }
}

async function ask(question) {
  const kb = $("#kb").value;
  if (!kb) { notice("Choose a knowledge base first."); return; }
  if (!current || current.kb !== kb) {
    current = { id: newThreadId(), kb, title: question.slice(0, 60) };
    $("#messages").replaceChildren();
    putThreadInAddress(current.id);
  }
  notice("");
  const turn = { question, kb, answer: "", citations: [], degraded: [] };
  addMessage("user").querySelector(".answer").textContent = question;
  const element = addMessage("assistant");
  element.dataset.state = "streaming";
  $("#send").disabled = true;
  try {
    const response = await fetch("/v1/agent/stream", {
      method: "POST", headers: headers(), body: JSON.stringify({ question, kb, thread_id: current.id }),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    for await (const event of sseEvents(response)) {
      const d = event.data;
      if (event.type === "route") turn.route = d.route;
      else if (event.type === "rewrite") turn.rewritten_query = d.rewritten_query;
      else if (event.type === "degraded") turn.degraded.push(...d.degraded);
      else if (event.type === "refusal") turn.refused = true;
      else if (event.type === "token") turn.answer += d.text;
      else if (event.type === "done") Object.assign(turn, d);
      else if (event.type === "error") throw new Error(d.message);
      const messages = $("#messages");
      const following = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 60;
      fillAssistant(element, turn);
      if (following) scrollToEnd(); // a reader who scrolled up to an earlier answer stays there
    }
    saveThread();
  } catch (error) {
    element.querySelector(".answer").textContent = `Error: ${error.message}`;
  } finally {
    element.dataset.state = "done";
    $("#send").disabled = false;
  }
}

// ---- wiring ------------------------------------------------------------------------------

$("#ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("#question").value.trim();
  if (!question) return;
  $("#question").value = "";
  ask(question);
});
$("#question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("#ask").requestSubmit(); }
});
$("#new-thread").addEventListener("click", () => openThread(null));
$("#close-citation").addEventListener("click", closeCitation);
$("#menu").addEventListener("click", () => {
  setSidebar(!sidebarOpen());
  if (narrow.matches && sidebarOpen()) $("#new-thread").focus();
});
$("#scrim").addEventListener("click", () => {
  closeCitation();
  if (narrow.matches) setSidebar(false);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Tab" && narrow.matches && sidebarOpen()) {
    // past either end of the drawer, Tab wraps round inside it instead of leaving for the browser's chrome
    const stops = [...$("#threads").querySelectorAll("a[href], button:not([disabled]), input, select")];
    const [first, last] = [stops[0], stops.at(-1)];
    const inside = $("#threads").contains(document.activeElement);
    if (event.shiftKey && (!inside || document.activeElement === first)) { last.focus(); event.preventDefault(); }
    else if (!event.shiftKey && (!inside || document.activeElement === last)) { first.focus(); event.preventDefault(); }
    return;
  }
  if (event.key !== "Escape" || $("#key-dialog").open) return;
  if (!$("#citation-panel").hidden) closeCitation();
  else if (narrow.matches && sidebarOpen()) { setSidebar(false); $("#menu").focus(); }
});
narrow.addEventListener("change", () => setSidebar(!narrow.matches));
overlay.addEventListener("change", syncScrim);
window.addEventListener("popstate", () => openThread(threadInAddress(), { push: false }));
$("#key-button").addEventListener("click", askForKey);
$("#key-dialog").addEventListener("close", () => {
  const key = $("#key-input").value.trim();
  if (key) { store.key = key; start(); }
});

async function start() {
  await loadKnowledgeBases();
  if (threadInAddress()) openThread(threadInAddress(), { push: false });
}

setSidebar(!narrow.matches);
renderThreads();
start();
