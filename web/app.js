// Sieve's chat page: streams /v1/agent/stream, renders citations, route and degradations,
// and keeps conversations (server-side threads) listed in localStorage.
"use strict";

const $ = (selector) => document.querySelector(selector);
const store = {
  get key() { return localStorage.getItem("sieve.key") || ""; },
  set key(value) { localStorage.setItem("sieve.key", value); },
  get threads() { return JSON.parse(localStorage.getItem("sieve.threads") || "[]"); },
  set threads(value) { localStorage.setItem("sieve.threads", JSON.stringify(value)); },
};
let current = null; // the open thread: {id, kb, title, turns: [...]}

function headers() {
  const h = { "Content-Type": "application/json" };
  if (store.key) h.Authorization = `Bearer ${store.key}`;
  return h;
}

function notice(text) {
  $("#notice").hidden = !text;
  $("#notice").textContent = text || "";
}

async function errorMessage(response) {
  try { return (await response.json()).error.message; } catch { return `HTTP ${response.status}`; }
}

async function loadKnowledgeBases() {
  const response = await fetch("/v1/knowledge-bases", { headers: headers() });
  if (response.status === 401) { $("#key-dialog").showModal(); return; }
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

function renderAnswer(element, text, citations) {
  // "[n]" becomes a button that opens citation n; everything else stays plain text
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    nodes.push(document.createTextNode(text.slice(last, match.index)));
    const button = document.createElement("button");
    button.type = "button";
    button.className = "cite";
    button.textContent = match[0];
    button.dataset.n = match[1];
    button.addEventListener("click", () => openCitation(citations, Number(match[1])));
    nodes.push(button);
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  element.replaceChildren(...nodes);
}

function openCitation(citations, n) {
  const citation = citations[n - 1];
  if (!citation) return;
  const page = citation.page ? ` · page ${citation.page}` : "";
  $("#citation-panel .source").textContent = `[${n}] ${citation.filename}${page}`;
  $("#citation-panel .quote").textContent = citation.quote;
  $("#citation-panel").hidden = false;
  showPageImage(citation);
}

async function showPageImage(citation) {
  // a chunk read from an image or a scan: the region of the page it came from (fetched with the key)
  const figure = $("#citation-panel .page");
  const img = figure.querySelector("img");
  figure.hidden = true;
  if (img.src) URL.revokeObjectURL(img.src);
  img.removeAttribute("src");
  if (!citation.page || !current) return;
  const url = `/v1/knowledge-bases/${encodeURIComponent(current.kb)}/documents/${encodeURIComponent(citation.doc_id)}`
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
  return element;
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
  const rewrite = turn.rewritten && turn.rewritten !== turn.question ? `searched for: ${turn.rewritten}` : "";
  element.querySelector(".rewrite").textContent = rewrite;
  renderAnswer(element.querySelector(".answer"), turn.answer || "", turn.citations || []);
  const files = [...new Set((turn.citations || []).map((c) => c.filename))];
  element.querySelector(".sources").textContent = files.length ? `sources: ${files.join(", ")}` : "";
}

function renderThreads() {
  const list = $("#thread-list");
  list.replaceChildren(...store.threads.map((thread) => {
    const item = document.createElement("li");
    item.textContent = thread.title;
    item.title = `${thread.kb}: ${thread.title}`;
    item.classList.toggle("active", current && thread.id === current.id);
    item.addEventListener("click", () => openThread(thread.id));
    return item;
  }));
}

function openThread(id) {
  current = store.threads.find((thread) => thread.id === id) || null;
  $("#messages").replaceChildren();
  if (current) {
    $("#kb").value = current.kb;
    current.turns.forEach(renderTurn);
  }
  $("#citation-panel").hidden = true;
  renderThreads();
}

function saveThread() {
  const threads = store.threads.filter((thread) => thread.id !== current.id);
  store.threads = [current, ...threads].slice(0, 50);
  renderThreads();
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
    current = { id: crypto.randomUUID(), kb, title: question.slice(0, 60), turns: [] };
    $("#messages").replaceChildren();
  }
  notice("");
  const turn = { question, answer: "", citations: [], degraded: [] };
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
      else if (event.type === "rewrite") turn.rewritten = d.rewritten_query;
      else if (event.type === "degraded") turn.degraded.push(...d.degraded);
      else if (event.type === "refusal") turn.refused = true;
      else if (event.type === "token") turn.answer += d.text;
      else if (event.type === "done") Object.assign(turn, {
        answer: d.answer, citations: d.citations, degraded: d.degraded, refused: d.refused, route: d.route,
      });
      else if (event.type === "error") throw new Error(d.message);
      fillAssistant(element, turn);
    }
    current.turns.push(turn);
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
$("#close-citation").addEventListener("click", () => { $("#citation-panel").hidden = true; });
$("#key-button").addEventListener("click", () => $("#key-dialog").showModal());
$("#key-dialog").addEventListener("close", () => {
  const key = $("#key-input").value.trim();
  if (key) { store.key = key; loadKnowledgeBases(); }
});

renderThreads();
loadKnowledgeBases();
