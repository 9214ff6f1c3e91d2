// The completion and workflow pages: the app's form, a streamed result (completion: Markdown text with
// like/dislike; workflow: live node progress and its outputs as text or JSON), and stop.
import { api, buildInputs, chooseLanguage, events, inputValues, markdown, t } from "/web-static/web.js";

const kind = document.querySelector("script[data-kind]").dataset.kind;
const $ = (id) => document.getElementById(id);
let taskId = null;
let running = false;

function showError(message) {
  $("error").textContent = `${t.error}: ${message}`;
  $("error").hidden = false;
}

function feedback(el, messageId) {
  const bar = document.createElement("div");
  bar.className = "actions";
  for (const [value, label, mark] of [["like", t.like, "👍"], ["dislike", t.dislike, "👎"]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn feedback";
    b.dataset.rating = value;
    b.textContent = mark;
    b.setAttribute("aria-label", label);
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", async () => {
      const next = b.getAttribute("aria-pressed") === "true" ? null : value;
      await api(`/messages/${messageId}/feedbacks`, { method: "POST", body: { rating: next } }).catch((e) => showError(e.message));
      for (const o of bar.querySelectorAll("button")) o.setAttribute("aria-pressed", String(o.dataset.rating === next));
    });
    bar.append(b);
  }
  el.append(bar);
}

function showOutputs(el, outputs) {
  const values = Object.values(outputs || {});
  if (values.length === 1 && typeof values[0] === "string") markdown(el, values[0]);
  else {
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(outputs, null, 2);
    el.replaceChildren(pre);
  }
}

async function run() {
  if (running || !$("inputs-form").reportValidity()) return;
  running = true;
  $("error").hidden = true;
  $("steps").replaceChildren();
  const result = $("result");
  result.hidden = false;
  result.replaceChildren();
  const body = document.createElement("div");
  body.className = "body";
  result.append(body);
  result.setAttribute("aria-busy", "true");
  $("run").hidden = true;
  $("stop").hidden = false;
  let text = "";
  let messageId = null;
  const path = kind === "workflow" ? "/workflows/run" : "/completion-messages";
  try {
    const response = await api(path, { method: "POST", raw: true,
      body: { inputs: inputValues($("inputs-form")), response_mode: "streaming" } });
    for await (const ev of events(response)) {
      if (ev.task_id) taskId = ev.task_id;
      if (ev.message_id) messageId = ev.message_id;
      if (ev.event === "message") { text += ev.answer; markdown(body, text); }
      else if (ev.event === "text_chunk") { text += ev.data.text; markdown(body, text); }
      else if (ev.event === "node_started" && showSteps) {
        const li = document.createElement("li");
        li.id = `node-${ev.data.node_id}`;
        li.textContent = `${ev.data.title} …`;
        $("steps").append(li);
      } else if (ev.event === "node_finished" && showSteps) {
        const li = document.getElementById(`node-${ev.data.node_id}`);
        if (li) li.textContent = `${ev.data.title} ${ev.data.status === "succeeded" ? "✓" : "✗"}`;
      } else if (ev.event === "workflow_finished") {
        if (ev.data.error) showError(ev.data.error);
        else showOutputs(body, ev.data.outputs);
      } else if (ev.event === "error") showError(ev.message);
    }
  } catch (e) {
    showError(e.message);
  } finally {
    result.removeAttribute("aria-busy");
    $("run").hidden = false;
    $("stop").hidden = true;
    running = false;
    taskId = null;
  }
  if (messageId && kind === "completion") feedback(result, messageId);
}

async function stop() {
  if (!taskId) return;
  const path = kind === "workflow" ? `/workflows/tasks/${taskId}/stop` : `/completion-messages/${taskId}/stop`;
  await api(path, { method: "POST", body: {} }).catch(() => {});
}

let showSteps = true;
async function main() {
  const { site } = await api("/site");
  chooseLanguage(site.default_language);
  showSteps = site.show_workflow_steps;
  document.title = site.title;
  $("title").textContent = site.title;
  $("description").textContent = site.description || "";
  $("copyright").textContent = site.copyright ? `© ${site.copyright}` : "";
  $("run").textContent = t.run;
  $("stop").textContent = t.stop;
  $("result").setAttribute("aria-label", t.result);
  $("run").addEventListener("click", run);
  $("stop").addEventListener("click", stop);
  const params = await api("/parameters");
  buildInputs($("inputs-form"), params.user_input_form);
  $("inputs-form").hidden = false;
  document.body.dataset.ready = "true";
}

main().catch((e) => showError(e.message));
