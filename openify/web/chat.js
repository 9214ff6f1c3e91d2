// The chat page: input form, streamed Markdown answers, stop, like/dislike, the visitor's conversations.
import { api, buildInputs, chooseLanguage, events, inputValues, markdown, t } from "/web-static/web.js";

const $ = (id) => document.getElementById(id);
let conversationId = "";
let taskId = null;
let controller = null;

function setText() {
  $("send").textContent = t.send;
  $("stop").textContent = t.stop;
  $("new-chat").textContent = t.newChat;
  $("query-label").textContent = t.query;
  $("query").placeholder = t.query;
  $("conversations").setAttribute("aria-label", t.conversations);
  $("toggle-list").setAttribute("aria-label", t.menu);
}

function showError(message) {
  $("error").textContent = `${t.error}: ${message}`;
  $("error").hidden = false;
}

function bubble(role, text) {
  const el = document.createElement("article");
  el.className = `msg ${role}`;
  el.setAttribute("aria-label", role === "user" ? "You" : "Assistant");
  const body = document.createElement("div");
  body.className = "body";
  if (role === "user") body.textContent = text;
  else markdown(body, text || "");
  el.append(body);
  $("log").append(el);
  return el;
}

function feedbackButtons(el, messageId, rating) {
  const bar = document.createElement("div");
  bar.className = "actions";
  for (const [value, label, mark] of [["like", t.like, "👍"], ["dislike", t.dislike, "👎"]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn feedback";
    b.dataset.rating = value;
    b.textContent = mark;
    b.setAttribute("aria-label", label);
    b.setAttribute("aria-pressed", String(rating === value));
    b.addEventListener("click", async () => {
      const next = b.getAttribute("aria-pressed") === "true" ? null : value;
      await api(`/messages/${messageId}/feedbacks`, { method: "POST", body: { rating: next } }).catch((e) => showError(e.message));
      for (const other of bar.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other.dataset.rating === next));
    });
    bar.append(b);
  }
  el.append(bar);
}

async function loadConversations() {
  const list = $("conversation-list");
  const { data } = await api("/conversations?limit=50");
  list.replaceChildren();
  for (const c of data) {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "conv";
    open.textContent = c.name || c.id;
    open.dataset.id = c.id;
    open.setAttribute("aria-current", String(c.id === conversationId));
    open.addEventListener("click", () => openConversation(c.id));
    const rename = document.createElement("button");
    rename.type = "button";
    rename.className = "icon-small btn";
    rename.textContent = "✎";
    rename.setAttribute("aria-label", `${t.rename}: ${c.name}`);
    rename.addEventListener("click", async () => {
      const name = prompt(t.renamePrompt, c.name);
      if (name) await api(`/conversations/${c.id}/name`, { method: "POST", body: { name } }).catch((e) => showError(e.message));
      loadConversations();
    });
    const del = document.createElement("button");
    del.type = "button";
    del.className = "icon-small btn";
    del.textContent = "×";
    del.setAttribute("aria-label", `${t.remove}: ${c.name}`);
    del.addEventListener("click", async () => {
      await api(`/conversations/${c.id}`, { method: "DELETE" }).catch((e) => showError(e.message));
      if (c.id === conversationId) newChat();
      loadConversations();
    });
    li.append(open, rename, del);
    list.append(li);
  }
}

async function openConversation(id) {
  conversationId = id;
  $("log").replaceChildren();
  $("inputs-form").hidden = true;
  const { data } = await api(`/messages?conversation_id=${encodeURIComponent(id)}&limit=100`);
  for (const m of data) {
    bubble("user", m.query);
    const el = bubble("assistant", m.answer);
    feedbackButtons(el, m.id, m.feedback && m.feedback.rating);
  }
  for (const b of document.querySelectorAll("#conversation-list .conv")) b.setAttribute("aria-current", String(b.dataset.id === id));
  $("conversations").classList.remove("open");
  $("query").focus();
}

let params = {};
function questionButtons(questions, label) {
  if (!questions || !questions.length) return;
  const bar = document.createElement("div");
  bar.className = "actions suggestions";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", label);
  for (const q of questions) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn suggestion";
    b.textContent = q;
    b.addEventListener("click", () => { if (!controller) { bar.remove(); send(q); } });
    bar.append(b);
  }
  $("log").append(bar);
}

function newChat() {
  conversationId = "";
  $("log").replaceChildren();
  buildInputs($("inputs-form"), params.user_input_form);
  if (params.opening_statement) bubble("assistant", params.opening_statement);
  questionButtons(params.suggested_questions, t.suggested);
  for (const b of document.querySelectorAll("#conversation-list .conv")) b.setAttribute("aria-current", "false");
  $("query").focus();
}

async function send(query) {
  $("error").hidden = true;
  bubble("user", query);
  const el = bubble("assistant", "");
  const body = el.querySelector(".body");
  el.setAttribute("aria-busy", "true");
  let answer = "";
  let messageId = null;
  controller = new AbortController();
  $("send").hidden = true;
  $("stop").hidden = false;
  try {
    const response = await api("/chat-messages", { method: "POST", raw: true, signal: controller.signal, body: {
      query, inputs: inputValues($("inputs-form")), conversation_id: conversationId, response_mode: "streaming" } });
    for await (const ev of events(response)) {
      if (ev.task_id) taskId = ev.task_id;
      if (ev.message_id) messageId = ev.message_id;
      if (ev.conversation_id) conversationId = ev.conversation_id;
      if (ev.event === "message" || ev.event === "agent_message") {
        answer += ev.answer;
        markdown(body, answer);
      } else if (ev.event === "message_replace") {
        answer = ev.answer;
        markdown(body, answer);
      } else if (ev.event === "error") showError(ev.message);
    }
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  } finally {
    el.removeAttribute("aria-busy");
    $("send").hidden = false;
    $("stop").hidden = true;
    controller = null;
    taskId = null;
  }
  if (messageId) feedbackButtons(el, messageId, null);
  for (const old of document.querySelectorAll(".suggestions")) old.remove();
  if (messageId && params.suggested_questions_after_answer && params.suggested_questions_after_answer.enabled) {
    const { data } = await api(`/messages/${messageId}/suggested`).catch(() => ({ data: [] }));
    questionButtons(data, t.suggested);
  }
  $("inputs-form").hidden = true;
  await loadConversations();
}

async function stop() {
  if (taskId) await api(`/chat-messages/${taskId}/stop`, { method: "POST", body: {} }).catch(() => {});
}

async function main() {
  const { site } = await api("/site");
  chooseLanguage(site.default_language);
  setText();
  document.title = site.title;
  $("title").textContent = site.title;
  $("description").textContent = site.description || "";
  $("copyright").textContent = site.copyright ? `© ${site.copyright}` : "";
  if (site.chat_color_theme) document.documentElement.style.setProperty("--accent", site.chat_color_theme);
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("query").value.trim();
    if (!q || controller) return;
    $("query").value = "";
    send(q);
  });
  $("query").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", newChat);
  $("toggle-list").addEventListener("click", () => {
    const open = $("conversations").classList.toggle("open");
    $("toggle-list").setAttribute("aria-expanded", String(open));
  });
  params = await api("/parameters");
  newChat();
  await loadConversations();
  document.body.dataset.ready = "true"; // for tests and scripts: the page is usable
}

main().catch((e) => showError(e.message));
