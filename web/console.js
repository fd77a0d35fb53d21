// Sieve's knowledge-base console: the same API and key as the chat page (localStorage `sieve.key`).
// Views are sections chosen by the address's #hash; the knowledge base is `?kb=` so a reload keeps both.
"use strict";

const $ = (selector) => document.querySelector(selector);
const PATHS = ["bm25", "dense", "graph", "image"];
const METRICS = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@100"];
const state = { kb: new URLSearchParams(location.search).get("kb") || "", profileSchema: null, charts: {} };

// ---- API -------------------------------------------------------------------------------------

function headers(json = true) {
  const h = json ? { "Content-Type": "application/json" } : {};
  const key = localStorage.getItem("sieve.key");
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const init = { method, headers: headers(!(body instanceof FormData)) };
  if (body !== undefined) init.body = body instanceof FormData ? body : JSON.stringify(body);
  const response = await fetch(path, init);
  if (response.status === 401) askForKey();
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error.message; } catch { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response.status === 204 ? null : response.json();
}

const kbPath = (rest = "") => `/v1/knowledge-bases/${encodeURIComponent(state.kb)}${rest}`;

function askForKey() {
  if (!$("#key-dialog").open) $("#key-dialog").showModal();
}

function notice(text) {
  $("#notice").hidden = !text;
  $("#notice").textContent = text || "";
}

// ---- small DOM helpers -----------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const cell = (label, content, props = {}) => el("td", { dataset: { label }, ...props }, content ?? "");
const fmt = (n, digits = 3) => (n === null || n === undefined ? "–" : Number(n).toFixed(digits));
const day = (iso) => (iso ? new Date(iso).toLocaleString() : "");

function confirmDelete(text) {
  // the CLI's question, answered in a dialog (Escape or Cancel keeps everything)
  return new Promise((resolve) => {
    const dialog = $("#confirm-dialog");
    $("#confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

// ---- views -----------------------------------------------------------------------------------

const loaders = {};

function show() {
  const view = (location.hash || "#kbs").slice(1);
  const known = document.getElementById(`view-${view}`) ? view : "kbs";
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${known}`;
  for (const link of document.querySelectorAll("#views a")) {
    if (link.dataset.view === known) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  notice(known !== "kbs" && !state.kb ? "Create or choose a knowledge base first." : "");
  if (known === "kbs" || state.kb) loaders[known]?.().catch((error) => notice(error.message));
}

function chooseKb(name) {
  state.kb = name;
  const url = new URL(location.href);
  url.searchParams.set("kb", name);
  history.replaceState(null, "", url);
  $("#kb").value = name;
}

async function refreshKbList() {
  const { data } = await api("GET", "/v1/knowledge-bases");
  const select = $("#kb");
  select.replaceChildren(...data.map((kb) => new Option(kb.name, kb.name)));
  if (!data.some((kb) => kb.name === state.kb)) state.kb = data.length ? data[0].name : "";
  if (state.kb) chooseKb(state.kb);
  return data;
}

// Knowledge bases ---------------------------------------------------------------------------------

loaders.kbs = async () => {
  const data = await refreshKbList();
  $("#kb-table tbody").replaceChildren(...data.map((kb) => el("tr", { dataset: { kb: kb.name } },
    cell("Name", el("a", { href: `?kb=${encodeURIComponent(kb.name)}#documents`, className: "kb-name" }, kb.name)),
    cell("Documents", String(kb.documents), { className: "num docs" }),
    cell("Chunks", String(kb.chunks), { className: "num chunks" }),
    cell("Created", day(kb.created_at)),
    cell("", el("button", { type: "button", className: "danger delete-kb", onclick: () => deleteKb(kb.name) }, "Delete")),
  )));
};

async function deleteKb(name) {
  if (!(await confirmDelete(`Delete knowledge base '${name}' and all its documents?`))) return;
  try {
    await api("DELETE", `/v1/knowledge-bases/${encodeURIComponent(name)}`);
    if (state.kb === name) state.kb = "";
    await loaders.kbs();
  } catch (error) { notice(error.message); }
}

$("#create-kb").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("#new-kb-name").value.trim();
  $("#create-kb-error").textContent = "";
  try {
    await api("POST", "/v1/knowledge-bases", { name, description: $("#new-kb-description").value });
    chooseKb(name);
    event.target.reset();
    await loaders.kbs();
  } catch (error) { $("#create-kb-error").textContent = error.message; }
});

// Upload ------------------------------------------------------------------------------------------

loaders.upload = async () => {};
const pending = new Map(); // this page's uploads by "kb/file name": listed with the documents until ready

function uploadMetadata() {
  const meta = {};
  const owner = $("#meta-owner").value.trim();
  const tags = $("#meta-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  const acl = $("#meta-acl").value.trim();
  if (owner) meta.owner = owner;
  if (tags.length) meta.tags = tags;
  if (acl) meta.acl = acl;
  return meta;
}

async function pollJob(jobId, onUpdate) {
  for (;;) {
    const job = await api("GET", `/v1/jobs/${jobId}`);
    onUpdate(job);
    if (job.status === "succeeded" || job.status === "failed") return job;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function uploadFile(file, kb = state.kb, meta = uploadMetadata(), item = null) {
  const status = el("span", { className: "status", dataset: { status: "uploading" } }, "uploading");
  const bar = el("progress", { max: 1, value: 0, "aria-label": `${file.name} progress` });
  const reason = el("span", { className: "reason" });
  const row = el("li", { dataset: { file: file.name } }, el("span", { className: "name" }, file.name), status, bar, reason);
  if (item) item.replaceWith(row); else $("#upload-list").append(row);
  const set = (value, text = value) => {
    status.dataset.status = value;
    status.textContent = text;
    pending.set(`${kb}/${file.name}`, value === "succeeded" ? null : { kb, name: file.name, status: text });
  };
  const form = new FormData();
  form.append("file", file, file.name);
  if (Object.keys(meta).length) form.append("metadata", JSON.stringify(meta));
  const failed = (message) => {
    set("failed");
    bar.remove();
    reason.textContent = message;
    row.append(el("button", { type: "button", className: "reupload", onclick: () => uploadFile(file, kb, meta, row) },
      "Re-upload"));
  };
  api("POST", `/v1/knowledge-bases/${encodeURIComponent(kb)}/documents`, form)
    .then((job) => pollJob(job.id, (update) => {
      const progress = update.progress;
      if (progress && progress.total) {
        bar.max = progress.total; bar.value = progress.done;
        set(update.status, `${update.status} · page ${progress.done} of ${progress.total}`);
      } else {
        bar.removeAttribute("value"); // indeterminate while queued or running
        set(update.status);
      }
    }))
    .then((job) => {
      if (job.status === "failed") failed(job.error || "the job failed");
      else {
        const pages = job.progress?.total;
        bar.max = 1; bar.value = 1;
        set("succeeded", pages ? `ready · ${pages} page${pages > 1 ? "s" : ""} read` : "ready");
      }
    })
    .catch((error) => failed(error.message));
}

function uploadAll(files) {
  if (!state.kb) { notice("Create or choose a knowledge base first."); return; }
  for (const file of files) uploadFile(file);
}

async function entryFiles(entry) {
  // a dropped folder: every file under it (readEntries answers in batches until it returns none)
  if (entry.isFile) return [await new Promise((resolve, reject) => entry.file(resolve, reject))];
  const reader = entry.createReader();
  const files = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) return files;
    for (const child of batch) files.push(...(await entryFiles(child)));
  }
}

const drop = $("#drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  const files = entries.length ? (await Promise.all(entries.map(entryFiles))).flat() : [...event.dataTransfer.files];
  uploadAll(files);
});
drop.addEventListener("click", () => $("#file-input").click());
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("#file-input").click(); }
});
for (const input of [$("#file-input"), $("#folder-input")]) {
  input.addEventListener("change", () => { uploadAll([...input.files]); input.value = ""; });
}

// Documents ---------------------------------------------------------------------------------------

loaders.documents = async () => {
  const { data } = await api("GET", kbPath("/documents"));
  const uploading = [...pending.values()].filter((p) => p && p.kb === state.kb);
  $("#doc-table tbody").replaceChildren(...uploading.map((p) => el("tr", { dataset: { doc: p.name }, className: "uploading" },
    cell("File", p.name), cell("Status", p.status, { className: "doc-status" }))), ...data.map(documentRow));
  if (!data.length && !uploading.length) {
    $("#doc-table tbody").append(el("tr", {}, el("td", { colSpan: 9 }, "No documents yet.")));
  }
};

function documentRow(doc) {
  const acl = el("input", { className: "acl", value: doc.acl.join(","), "aria-label": `Access list of ${doc.filename}` });
  const aclState = el("span", { role: "status" });
  const saveAcl = async () => {
    try {
      const saved = await api("PUT", kbPath(`/documents/${doc.doc_id}/acl`), {
        acl: acl.value.split(",").map((e) => e.trim()).filter(Boolean),
      });
      acl.value = saved.acl.join(",");
      aclState.className = "ok"; aclState.textContent = "saved";
    } catch (error) { aclState.className = "error"; aclState.textContent = error.message; }
  };
  const status = el("span", { className: "doc-status" }, "ready");
  return el("tr", { dataset: { doc: doc.filename } },
    cell("File", el("span", { title: doc.title }, doc.filename)),
    cell("Status", status),
    cell("Chunks", String(doc.chunks), { className: "num" }),
    cell("Owner", doc.owner),
    cell("Tags", doc.tags.join(", ")),
    cell("Created", day(doc.created_at)),
    cell("Updated", day(doc.updated_at)),
    cell("Access list", el("span", {}, acl, " ", el("button", { type: "button", onclick: saveAcl }, "Save"), " ", aclState)),
    cell("", el("span", {},
      el("button", { type: "button", className: "show-chunks", onclick: () => showChunks(doc) }, "Chunks"),
      el("button", { type: "button", className: "reindex", onclick: () => reindex(doc, status) }, "Re-index"),
      el("button", { type: "button", className: "danger delete-doc", onclick: () => deleteDocument(doc) }, "Delete"))),
  );
}

async function deleteDocument(doc) {
  if (!(await confirmDelete(`Delete document '${doc.filename}'?`))) return;
  try {
    await api("DELETE", kbPath(`/documents/${doc.doc_id}`));
    $("#chunks").hidden = true;
    await loaders.documents();
  } catch (error) { notice(error.message); }
}

async function reindex(doc, status) {
  try {
    const job = await api("POST", kbPath(`/documents/${doc.doc_id}/reindex`));
    const done = await pollJob(job.id, (update) => { status.textContent = update.status; });
    if (done.status === "failed") status.textContent = `failed: ${done.error}`;
    else await loaders.documents();
  } catch (error) { status.textContent = `failed: ${error.message}`; }
}

function tableHeader(text) {
  // a table's pieces each start with its header row (cells joined by " | "): the first such line
  const line = text.split("\n").find((l) => l.includes(" | "));
  return line || null;
}

async function showChunks(doc) {
  const { data } = await api("GET", kbPath(`/documents/${doc.doc_id}/chunks`));
  $("#chunks-title").textContent = `${doc.filename}: ${data.length} chunks`;
  $("#chunk-list").replaceChildren(...data.map((chunk) => {
    const where = [`#${chunk.ordinal + 1} of ${data.length}`, `tokens ${chunk.token_start}–${chunk.token_end}`];
    if (chunk.location?.page) where.push(`page ${chunk.location.page}`);
    const header = tableHeader(chunk.text);
    return el("li", { dataset: { chunk: chunk.chunk_id } },
      el("div", { className: "where" }, where.join(" · ")),
      header ? el("div", { className: "table-header" }, `table header: ${header}`) : null,
      el("pre", {}, chunk.text));
  }));
  $("#chunks").hidden = false;
  $("#chunks-title").scrollIntoView({ block: "nearest" });
}

// Hit testing -------------------------------------------------------------------------------------

async function loadProfile() {
  return api("GET", kbPath("/profile"));
}

loaders.hits = async () => {
  const profile = await loadProfile();
  $("#hit-paths").replaceChildren(el("legend", {}, "Recall paths for this query only"), ...PATHS.map((path) =>
    el("label", {}, el("input", { type: "checkbox", name: "path", value: path, checked: profile.paths.includes(path) }),
      ` ${path}`)));
};

$("#hit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#hit-error").textContent = "";
  const paths = [...document.querySelectorAll("#hit-paths input:checked")].map((i) => i.value);
  try {
    const result = await api("POST", kbPath("/search"), {
      query: $("#hit-query").value, k: Number($("#hit-k").value) || 5, paths: paths.length ? paths : null,
    });
    renderHits(result);
  } catch (error) { $("#hit-error").textContent = error.message; }
});

function renderHits(result) {
  const stages = Object.entries(result.timings_ms).map(([stage, ms]) =>
    el("span", { className: "badge stage", dataset: { stage } }, `${stage} ${fmt(ms, 1)} ms`));
  const degraded = result.degraded.map((flag) => el("span", { className: "badge degraded" }, flag));
  $("#hit-summary").replaceChildren(
    el("p", { id: "hit-used" }, `paths: ${result.paths.join(", ")} · reranker: ${result.reranker}`
      + (result.reranked ? " (reranked)" : "") + ` · ${result.hits.length} hits`),
    el("div", { className: "stages" }, ...stages, ...degraded));
  // the fused order is the fused score's; the final order is the reranker's when it ran
  const fusedRank = new Map([...result.hits].sort((a, b) => b.score - a.score).map((h, i) => [h.chunk_id, i + 1]));
  const head = ["#", "File", ...result.paths.map((p) => `${p} rank (score)`), "Fused", "Fused score",
    ...(result.reranked ? ["Reranker score"] : []), "Relevance", "Text"];
  $("#hit-table thead").replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))));
  $("#hit-table tbody").replaceChildren(...result.hits.map((hit, i) => el("tr", { dataset: { chunk: hit.chunk_id } },
    cell("#", String(i + 1), { className: "num" }),
    cell("File", hit.filename, { className: "file" }),
    ...result.paths.map((path) => cell(`${path} rank (score)`, path in hit.ranks
      ? `${hit.ranks[path]} (${fmt(hit.path_scores[path])})` : "–", { className: "num rank", dataset: { label: `${path} rank (score)`, path } })),
    cell("Fused", String(fusedRank.get(hit.chunk_id)), { className: "num fused-rank" }),
    cell("Fused score", fmt(hit.score, 4), { className: "num" }),
    ...(result.reranked ? [cell("Reranker score", fmt(hit.relevance), { className: "num rerank" })] : []),
    cell("Relevance", fmt(hit.relevance) + (result.relevance_threshold !== null
      ? (hit.relevance >= result.relevance_threshold ? " ✓" : " ✗") : ""), { className: "num" }),
    cell("Text", hit.text.slice(0, 240), { className: "excerpt" }),
  )));
  $("#hit-table").hidden = false;
}

// Profile -----------------------------------------------------------------------------------------

async function profileSchema() {
  if (!state.profileSchema) {
    const openapi = await api("GET", "/openapi.json");
    state.profileSchema = openapi.components.schemas;
  }
  return state.profileSchema;
}

function resolve(schemas, prop) {
  // the field's own schema: a $ref to an enum, or one of anyOf (a nullable field)
  const ref = (s) => (s.$ref ? schemas[s.$ref.split("/").pop()] : s);
  if (prop.anyOf) return { ...ref(prop.anyOf.find((s) => s.type !== "null")), nullable: true };
  return ref(prop);
}

loaders.profile = async () => {
  const [schemas, profile] = await Promise.all([profileSchema(), loadProfile()]);
  const props = schemas.RetrievalProfile.properties;
  $("#profile-error").textContent = "";
  $("#profile-saved").textContent = "";
  $("#profile-fields").replaceChildren(...Object.entries(props).map(([name, prop]) => {
    const field = resolve(schemas, prop);
    const value = profile[name];
    let input;
    if (name === "paths") {
      input = el("span", { className: "row", role: "group", "aria-label": "paths" }, ...PATHS.map((p) => el("label", {},
        el("input", { type: "checkbox", name: "paths", value: p, checked: value.includes(p) }), ` ${p}`)));
    } else if (name === "weights") {
      input = el("span", { className: "row", role: "group", "aria-label": "weights" }, ...PATHS.map((p) => el("label", {}, `${p} `,
        el("input", { type: "number", step: "any", name: `weights.${p}`, value: value[p] ?? "", style: "width:6em" }))));
    } else if (field.enum) {
      input = el("select", { name }, ...field.enum.map((option) => new Option(option, option, false, option === value)));
    } else if (field.type === "boolean") {
      input = el("input", { type: "checkbox", name, checked: Boolean(value) });
    } else {
      input = el("input", { type: "number", step: "any", name, value: value ?? "" });
    }
    const id = `field-${name}`;
    if (input.tagName !== "SPAN") input.id = id;
    const group = input.tagName === "SPAN"; // checkboxes or numbers of their own, each with its label
    return el(group ? "div" : "label", { className: "field", ...(group ? {} : { htmlFor: id }), dataset: { field: name } },
      el("span", {}, name), input,
      prop.description ? el("small", {}, prop.description) : null,
      el("span", { className: "error", id: `error-${name}`, role: "alert" }));
  }));
};

function profileBody(form) {
  const body = {};
  body.paths = [...form.querySelectorAll("input[name=paths]:checked")].map((i) => i.value);
  body.weights = {};
  for (const input of form.querySelectorAll("input[name^='weights.']")) {
    if (input.value !== "") body.weights[input.name.slice(8)] = Number(input.value);
  }
  for (const input of form.querySelectorAll("#profile-fields select, #profile-fields input[id^='field-']")) {
    const name = input.name;
    if (input.type === "checkbox") body[name] = input.checked;
    else if (input.tagName === "SELECT") body[name] = input.value;
    else body[name] = input.value === "" ? null : (Number.isNaN(Number(input.value)) ? input.value : Number(input.value));
  }
  return body;
}

$("#profile-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  for (const error of form.querySelectorAll(".field .error")) error.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  $("#profile-error").textContent = "";
  $("#profile-saved").textContent = "";
  try {
    await api("PUT", kbPath("/profile"), profileBody(form));
    $("#profile-saved").textContent = "Saved: the next query uses it.";
    $("#profile-saved").className = "ok";
  } catch (error) {
    // the server names each invalid field as `field.path: message`, joined by "; "
    const general = [];
    for (const part of error.message.split("; ")) {
      const match = part.match(/^([\w.]+): (.*)$/);
      const name = match && match[1].split(".")[0];
      const slot = name && document.getElementById(`error-${name}`);
      if (slot) {
        slot.textContent = match[2];
        form.querySelector(`[data-field="${name}"] input, [data-field="${name}"] select`)?.setAttribute("aria-invalid", "true");
      } else general.push(part);
    }
    $("#profile-error").textContent = general.join("; ");
    form.querySelector("[aria-invalid='true']")?.focus();
  }
});

// Evaluation --------------------------------------------------------------------------------------

const picked = { files: [] };

function pickEvalFiles(files) {
  picked.files = [...files];
  const qrels = picked.files.filter((f) => f.name.endsWith(".tsv"));
  $("#eval-split").replaceChildren(...qrels.map((f) => new Option(f.name.replace(/\.tsv$/, ""), f.name)));
  $("#eval-picked").textContent = picked.files.map((f) => f.webkitRelativePath || f.name).join(", ");
  if (picked.files.some((f) => f.name === "queries.jsonl")) document.querySelector("input[value=beir]").checked = true;
}

for (const input of [$("#eval-folder"), $("#eval-files")]) {
  input.addEventListener("change", () => pickEvalFiles(input.files));
}

$("#eval-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#eval-error").textContent = "";
  const kind = document.querySelector("input[name=eval-kind]:checked").value;
  const byName = (name) => picked.files.find((f) => f.name === name);
  const folder = (picked.files[0]?.webkitRelativePath || "").split("/")[0];
  const body = { kind, name: folder || picked.files.map((f) => f.name).join(", ") };
  try {
    if (kind === "beir") {
      const qrels = picked.files.find((f) => f.name === $("#eval-split").value);
      if (!byName("queries.jsonl") || !qrels) throw new Error("choose a BEIR folder (queries.jsonl and qrels/<split>.tsv)");
      body.queries = await byName("queries.jsonl").text();
      body.qrels = await qrels.text();
      if (byName("corpus.jsonl")) body.corpus = await byName("corpus.jsonl").text();
    } else {
      const rows = picked.files.find((f) => f.name.endsWith(".jsonl"));
      if (!rows) throw new Error("choose an answer-or-refuse .jsonl file");
      body.rows = await rows.text();
    }
    $("#eval-run").disabled = true;
    $("#eval-result").replaceChildren(el("p", { role: "status", className: "muted" }, "Running…"));
    let run = await api("POST", kbPath("/evaluations"), body);
    while (run.status === "running") {
      await new Promise((resolve) => setTimeout(resolve, 500));
      run = await api("GET", kbPath(`/evaluations/${run.id}`));
    }
    renderEvaluation(run);
    await loadEvaluations();
  } catch (error) {
    $("#eval-error").textContent = error.message;
    $("#eval-result").replaceChildren();
  } finally { $("#eval-run").disabled = false; }
});

function chart(canvas, config) {
  // Chart.js draws on a canvas: its colours come from the page's (light or dark) variables
  state.charts[canvas.id]?.destroy();
  Chart.defaults.color = css("--text");
  Chart.defaults.borderColor = css("--border");
  Chart.defaults.font.family = css("--font");
  state.charts[canvas.id] = new Chart(canvas, { ...config, options: { responsive: true, maintainAspectRatio: false,
    animation: false, ...config.options } });
  return state.charts[canvas.id];
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"];

function renderEvaluation(run) {
  const out = $("#eval-result");
  if (run.status === "failed") {
    out.replaceChildren(el("p", { className: "error", role: "alert" }, `The evaluation failed: ${run.error}`));
    return;
  }
  const result = run.result;
  if (run.kind === "beir") {
    const metrics = METRICS.filter((m) => m in result.runs[0].metrics && m !== "recall@100");
    const canvas = el("canvas", { id: "eval-chart", role: "img", "aria-label": "Hit@K, MRR and nDCG per path" });
    out.replaceChildren(
      el("h3", {}, `${run.name || "BEIR"}: ${result.queries} queries`),
      el("div", { className: "chart" }, canvas),
      el("table", { className: "grid", id: "eval-metrics" },
        el("thead", {}, el("tr", {}, el("th", {}, "Run"), ...metrics.map((m) => el("th", {}, m)),
          el("th", {}, "p50 ms"), el("th", {}, "p95 ms"), el("th", {}, "degraded"))),
        el("tbody", {}, ...result.runs.map((r) => el("tr", { dataset: { run: r.name } }, cell("Run", r.name),
          ...metrics.map((m) => cell(m, fmt(r.metrics[m]), { className: "num", dataset: { label: m, metric: m } })),
          cell("p50 ms", fmt(r.latency_ms.p50, 1), { className: "num" }),
          cell("p95 ms", fmt(r.latency_ms.p95, 1), { className: "num" }),
          cell("degraded", String(r.degraded), { className: "num" }))))));
    chart(canvas, {
      type: "bar",
      data: { labels: metrics, datasets: result.runs.map((r, i) => ({
        label: r.name, data: metrics.map((m) => r.metrics[m]), backgroundColor: PALETTE[i % PALETTE.length] })) },
      options: { scales: { y: { min: 0, max: 1 } } },
    });
  } else {
    const canvas = el("canvas", { id: "eval-chart", role: "img", "aria-label": "Accuracy per decision rule" });
    out.replaceChildren(
      el("h3", {}, `${run.name || "Answer or refuse"}: ${result.rows} rows, relevance by ${result.relevance}`),
      el("div", { className: "chart" }, canvas),
      ...result.reports.map((r) => confusion(r)));
    chart(canvas, {
      type: "bar",
      data: { labels: result.reports.map((r) => r.name), datasets: [
        { label: "calibration half", data: result.reports.map((r) => r.calibration.accuracy), backgroundColor: PALETTE[0] },
        { label: "held-out half", data: result.reports.map((r) => r.test.accuracy), backgroundColor: PALETTE[1] }] },
      options: { scales: { y: { min: 0, max: 1 } } },
    });
  }
}

function confusion(report) {
  const c = report.test.confusion;
  const limits = Object.entries(report.limits).map(([k, v]) => `${k}=${fmt(v, 4)}`).join(", ");
  return el("table", { className: "confusion" },
    el("caption", {}, `${report.name} (${limits}): held-out accuracy ${fmt(report.test.accuracy)}`),
    el("thead", {}, el("tr", {}, el("th", {}, "truth \\ decision"), el("th", {}, "answered"), el("th", {}, "refused"))),
    el("tbody", {},
      el("tr", {}, el("th", {}, "answerable"), el("td", {}, String(c["answerable/answered"])),
        el("td", {}, String(c["answerable/refused"]))),
      el("tr", {}, el("th", {}, "unanswerable"), el("td", {}, String(c["unanswerable/answered"])),
        el("td", {}, String(c["unanswerable/refused"])))));
}

let pastRuns = [];

async function loadEvaluations() {
  ({ data: pastRuns } = await api("GET", kbPath("/evaluations")));
  $("#eval-table tbody").replaceChildren(...pastRuns.map((run) => el("tr", { dataset: { evaluation: run.id } },
    cell("When", day(run.created_at)), cell("Kind", run.kind), cell("Name", run.name),
    cell("Status", run.status === "failed" ? `failed: ${run.error}` : run.status),
    cell("", run.status === "running" ? "" : el("button", { type: "button", onclick: () => renderEvaluation(run) }, "Show")))));
  compare();
}

function compare() {
  // the chosen metric of each path across the KB's past BEIR runs, oldest first
  const metric = $("#compare-metric").value || "ndcg@10";
  const runs = pastRuns.filter((r) => r.kind === "beir" && r.status === "succeeded").reverse();
  const names = [...new Set(runs.flatMap((r) => r.result.runs.map((x) => x.name)))];
  chart($("#compare-chart"), {
    type: "bar",
    data: { labels: runs.map((r) => `${day(r.created_at)} ${r.name}`), datasets: names.map((name, i) => ({
      label: name, backgroundColor: PALETTE[i % PALETTE.length],
      data: runs.map((r) => r.result.runs.find((x) => x.name === name)?.metrics[metric] ?? null) })) },
    options: { scales: { y: { min: 0, max: 1 } } },
  });
}

$("#compare-metric").replaceChildren(...METRICS.map((m) => new Option(m, m, false, m === "ndcg@10")));
$("#compare-metric").addEventListener("change", compare);

loaders.evaluation = async () => { await loadEvaluations(); };

// ---- start -----------------------------------------------------------------------------------

$("#kb").addEventListener("change", (event) => { chooseKb(event.target.value); show(); });
$("#key-button").addEventListener("click", askForKey);
$("#key-dialog").addEventListener("close", () => {
  const key = $("#key-input").value.trim();
  if (key) { localStorage.setItem("sieve.key", key); show(); }
});
addEventListener("hashchange", show);
refreshKbList().catch((error) => notice(error.message)).finally(show);
