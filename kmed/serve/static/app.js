// kmed web chat: streams a turn over SSE (fetch + ReadableStream), renders [n] citations as buttons,
// shows the red emergency banner, and never sends a half-composed Hangul syllable.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log"), input = $("input"), form = $("form"), send = $("send");
const SESSION_KEY = "kmed.session";
let sessionId = localStorage.getItem(SESSION_KEY);
let busy = false;
let composing = false;
window.kmedTimings = []; // [{ttft_ms, total_ms}] per turn: time to first token and to the final reply

function headers(extra) {
  const h = Object.assign({ "Content-Type": "application/json" }, extra || {});
  const key = sessionStorage.getItem("kmed.key");
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function scrollDown() { log.scrollTop = log.scrollHeight; }

async function apiError(response) {
  try {
    const body = await response.json();
    return body.error || { code: "http_" + response.status, message: response.statusText };
  } catch (e) {
    return { code: "http_" + response.status, message: "서버 응답을 읽지 못했어요 (" + response.status + ")." };
  }
}

async function newSession() {
  const r = await fetch("/v1/sessions", { method: "POST", headers: headers() });
  if (!r.ok) throw await apiError(r);
  sessionId = (await r.json()).session_id;
  localStorage.setItem(SESSION_KEY, sessionId);
}

// Text with [n] turned into buttons that open citation n.
function withCitations(parent, text, citations) {
  const parts = text.split(/(\[\d+\])/);
  for (const part of parts) {
    const m = /^\[(\d+)\]$/.exec(part);
    const c = m && citations[Number(m[1]) - 1];
    if (c) {
      const b = el("button", "cite", part);
      b.type = "button";
      b.title = c.title;
      b.addEventListener("click", () => openCitation(c));
      parent.appendChild(b);
    } else if (part) {
      parent.appendChild(document.createTextNode(part));
    }
  }
}

function renderReply(bubble, reply, notices) {
  bubble.textContent = "";
  bubble.classList.toggle("emergency-reply", reply.triage.level === "emergency");
  for (const n of notices) bubble.appendChild(el("p", "notice", "ℹ " + n));
  for (const line of reply.answer.split("\n")) {
    const cls = line.startsWith("■") ? "heading" : line.startsWith("- ") ? "item" : "";
    const p = el("p", cls);
    withCitations(p, line, reply.citations);
    bubble.appendChild(p);
  }
  if (reply.citations.length) {
    const list = el("ol", "sources");
    reply.citations.forEach((c, i) => {
      const li = el("li");
      const b = el("button", "", "[" + (i + 1) + "] " + c.title);
      b.type = "button";
      b.addEventListener("click", () => openCitation(c));
      li.appendChild(b);
      list.appendChild(li);
    });
    bubble.appendChild(list);
  }
  const meta = el("p", "meta");
  meta.appendChild(el("span", "level " + reply.triage.level, levelName(reply.triage.level)));
  if (reply.departments.length) meta.appendChild(document.createTextNode(" 진료과: " + reply.departments.join(", ")));
  bubble.appendChild(meta);
  if (reply.triage.level === "emergency") showEmergency(reply.triage.reasons);
}

function levelName(level) {
  return { emergency: "응급", urgent: "오늘 진료", routine: "진료 권장", self_care: "자가 관리", info: "정보" }[level] || level;
}

function showEmergency(reasons) {
  $("emergency-reason").textContent = reasons && reasons.length ? "이유: " + reasons.join(", ") : "";
  $("emergency").hidden = false;
  window.scrollTo(0, 0);
}

async function openCitation(c) {
  $("source-title").textContent = c.title;
  $("source-text").textContent = c.snippet;
  const list = $("source-list");
  list.textContent = "";
  list.appendChild(el("li", "", c.source));
  const dialog = $("source");
  if (!dialog.open) dialog.showModal();
  try {
    const r = await fetch("/v1/passages/" + encodeURIComponent(c.id), { headers: headers() });
    if (!r.ok) return;
    const p = await r.json();
    $("source-text").textContent = p.text;
    if (p.sources && p.sources.length) {
      list.textContent = "";
      for (const s of p.sources) {
        const li = el("li");
        const label = [s.publisher, s.title].filter(Boolean).join(" · ");
        if (s.url) {
          const a = el("a", "", label);
          a.href = s.url; a.target = "_blank"; a.rel = "noopener noreferrer";
          li.appendChild(a);
        } else {
          li.textContent = label;
        }
        list.appendChild(li);
      }
    }
  } catch (e) { /* the snippet is already shown */ }
}

// One turn over SSE: events token, notice, meta, reply (the to_dict contract) or error.
async function ask(text, retried) {
  if (!sessionId) await newSession();
  const started = performance.now();
  let firstToken = null;
  const bubble = el("div", "msg bot");
  bubble.appendChild(el("p", "pending", "답변을 준비하고 있어요…"));
  log.appendChild(bubble);
  scrollDown();
  const r = await fetch("/v1/sessions/" + sessionId + "/messages", {
    method: "POST", headers: headers({ Accept: "text/event-stream" }), body: JSON.stringify({ text }),
  });
  if (!r.ok) {
    const err = await apiError(r);
    bubble.remove();
    if (err.code === "unknown_session" && !retried) { sessionId = null; return ask(text, true); }
    throw err;
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", streamed = "", notices = [];
  const live = el("p", "streaming");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      const payload = data ? JSON.parse(data) : {};
      if (event === "token") {
        if (firstToken === null) { firstToken = performance.now() - started; bubble.textContent = ""; bubble.appendChild(live); }
        streamed += payload.text;
        live.textContent = streamed;
        scrollDown();
      } else if (event === "notice") {
        notices.push(payload.text);
      } else if (event === "reply") {
        renderReply(bubble, payload, notices);
        window.kmedTimings.push({ ttft_ms: firstToken, total_ms: performance.now() - started });
      } else if (event === "error") {
        bubble.textContent = "";
        bubble.appendChild(el("p", "error", payload.message || "답변을 만들지 못했어요. 다시 보내 주세요."));
      }
    }
  }
  scrollDown();
}

function showError(err) {
  if (err && err.code === "unauthorized") { $("keybox").hidden = false; $("key").focus(); }
  const bubble = el("div", "msg bot");
  bubble.appendChild(el("p", "error", (err && err.message) || "서버에 연결하지 못했어요. 잠시 뒤 다시 시도해 주세요."));
  log.appendChild(bubble);
  scrollDown();
}

async function submit() {
  const text = input.value.trim();
  if (!text || busy) return;
  busy = true; send.disabled = true;
  input.value = ""; autosize();
  log.appendChild(el("div", "msg user", text));
  scrollDown();
  try { await ask(text, false); } catch (err) { showError(err); }
  busy = false; send.disabled = false;
  input.focus();
}

function autosize() { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight, 160) + "px"; }

// Korean IME: Enter that confirms a syllable (isComposing, or keyCode 229 on some browsers) must not send.
input.addEventListener("compositionstart", () => { composing = true; });
input.addEventListener("compositionend", () => { composing = false; });
input.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.shiftKey) return;
  if (e.isComposing || composing || e.keyCode === 229) return;
  e.preventDefault();
  submit();
});
input.addEventListener("input", autosize);
window.addEventListener("resize", scrollDown); // a phone keyboard opening keeps the latest answer in view
form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });

$("new").addEventListener("click", async () => {
  const old = sessionId;
  sessionId = null;
  localStorage.removeItem(SESSION_KEY);
  if (old) fetch("/v1/sessions/" + old, { method: "DELETE", headers: headers() }).catch(() => {});
  for (const node of [...log.querySelectorAll(".msg:not(.intro)")]) node.remove();
  $("emergency").hidden = true;
  input.focus();
});

$("keybox").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("kmed.key", $("key").value.trim());
  $("keybox").hidden = true;
  input.focus();
});

// A reload continues the stored consultation (its redacted history) when the server still has it.
(async function restore() {
  if (!sessionId) return;
  try {
    const r = await fetch("/v1/sessions/" + sessionId, { headers: headers() });
    if (!r.ok) { sessionId = null; localStorage.removeItem(SESSION_KEY); return; }
    const s = await r.json();
    const history = s.history;
    history.forEach((turn, i) => {
      if (turn.role === "user") { log.appendChild(el("div", "msg user", turn.content)); return; }
      const bubble = el("div", "msg bot");
      log.appendChild(bubble);
      if (i === history.length - 1 && s.last_reply) renderReply(bubble, s.last_reply, []);
      else bubble.appendChild(el("p", "", turn.content));
    });
    scrollDown();
  } catch (e) { /* a fresh page still works */ }
})();
input.focus();
