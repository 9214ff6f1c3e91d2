// Shared by the site pages: the visitor's passport, the web API client, SSE reading, UI text, Markdown.
// The page only ever holds its passport (per visitor, in localStorage), never the app's API key.
import { marked } from "/web-static/vendor/marked.esm.js";
import DOMPurify from "/web-static/vendor/purify.es.mjs";

export const code = location.pathname.split("/").filter(Boolean).pop();
const passportKey = `openify-passport:${code}`;

const TEXT = {
  en: { send: "Send", stop: "Stop", newChat: "New chat", query: "Your message", like: "Like", dislike: "Dislike",
    rename: "Rename", remove: "Delete", renamePrompt: "New name", conversations: "Conversations",
    menu: "Show conversations", error: "Something went wrong", run: "Run", result: "Result", suggested: "Suggested questions" },
  zh: { send: "发送", stop: "停止", newChat: "新对话", query: "输入消息", like: "赞", dislike: "踩",
    rename: "重命名", remove: "删除", renamePrompt: "新名称", conversations: "对话列表",
    menu: "显示对话列表", error: "出错了", run: "运行", result: "结果", suggested: "推荐问题" },
};
export let t = TEXT.en;
export function chooseLanguage(siteLanguage) {
  const lang = (navigator.language || siteLanguage || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  t = TEXT[lang];
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  return lang;
}

async function passport(renew = false) {
  let token = renew ? null : localStorage.getItem(passportKey);
  if (!token) {
    const r = await fetch("/web-api/passport", { headers: { "X-App-Code": code } });
    if (!r.ok) throw new Error((await r.json()).message || r.statusText);
    token = (await r.json()).access_token;
    localStorage.setItem(passportKey, token);
  }
  return token;
}

export async function api(path, { method = "GET", body, signal, raw = false } = {}) {
  for (const renew of [false, true]) {
    const headers = { "X-App-Code": code, Authorization: `Bearer ${await passport(renew)}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(`/web-api${path}`, { method, headers, signal,
      body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401 && !renew) continue; // an expired or foreign passport: get a new one once
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || r.statusText);
    return raw ? r : r.json();
  }
}

// Dify's SSE frames: `data: {json}` blocks separated by a blank line.
export async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}

export function markdown(el, text) {
  el.innerHTML = DOMPurify.sanitize(marked.parse(text, { gfm: true, breaks: true }));
}

// The app's input form (Dify's user_input_form): text, paragraph, select and number fields.
export function buildInputs(form, fields) {
  form.replaceChildren();
  for (const entry of fields || []) {
    const [type, f] = Object.entries(entry)[0];
    const label = document.createElement("label");
    label.textContent = f.label || f.variable;
    let input;
    if (type === "paragraph") input = document.createElement("textarea");
    else if (type === "select") {
      input = document.createElement("select");
      for (const o of f.options || []) input.append(new Option(o, o));
    } else {
      input = document.createElement("input");
      input.type = type === "number" ? "number" : "text";
      if (f.max_length) input.maxLength = f.max_length;
    }
    input.name = f.variable;
    input.required = !!f.required;
    if (f.default) input.value = f.default;
    label.append(input);
    form.append(label);
  }
  form.hidden = !form.childElementCount;
}

export function inputValues(form) {
  const out = {};
  for (const el of form.elements) if (el.name) out[el.name] = el.type === "number" && el.value ? Number(el.value) : el.value;
  return out;
}
