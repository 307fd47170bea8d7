"use strict";
// The sandbox's Telegram-like client: it reads /sandbox/api/state for the chosen persona and posts what they do.
const $ = (selector) => document.querySelector(selector);
let persona = null;
let state = null;
let view = { kind: "bot" };
let openInvoice = null;
const seenToasts = new Set();
let toastsPrimed = false;

// The page's own words come from TelePay's String Catalog (keys sandbox.page.*), in the language chosen here:
// ?lang=, then the last choice, then the browser's; English when the catalog has not that language.
let strings = {};
let language = "en";
function t(key, values) {
  let text = (strings[language] && strings[language][key]) || (strings.en && strings.en[key]) || key;
  for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
  return text;
}
function translatePage() {
  document.documentElement.lang = language;
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of document.querySelectorAll("[data-i18n-title]")) element.title = t(element.dataset.i18nTitle);
  for (const element of document.querySelectorAll("[data-i18n-aria]")) element.setAttribute("aria-label", t(element.dataset.i18nAria));
  for (const element of document.querySelectorAll("[data-i18n-placeholder]")) element.placeholder = t(element.dataset.i18nPlaceholder);
  $("#page-language").value = language;
}
async function loadStrings() {
  const catalog = await request("/sandbox/strings.json");
  strings = catalog.strings;
  let stored = null;
  try { stored = localStorage.getItem("telepay-sandbox-language"); } catch (error) { stored = null; }
  const wanted = new URLSearchParams(location.search).get("lang") || stored || (navigator.language || "en").slice(0, 2);
  language = catalog.languages.includes(wanted) ? wanted : "en";
  translatePage();
}

async function request(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({ error: "the sandbox answered " + response.status }));
  if (!response.ok) throw new Error(payload.error || ("the sandbox answered " + response.status));
  return payload;
}

function toast(text, isError) {
  const element = document.createElement("div");
  element.className = "toast" + (isError ? " error" : "");
  element.textContent = text;
  $("#toasts").append(element);
  setTimeout(() => element.remove(), 4000);
}

async function act(body) {
  try {
    return await request("/sandbox/api/act", Object.assign({ persona: persona }, body));
  } catch (error) {
    toast(error.message, true);
    return null;
  }
}

// Telegram's HTML subset, rebuilt element by element so nothing else reaches the page.
const allowedTags = { B: "b", STRONG: "b", I: "i", EM: "i", U: "u", INS: "u", S: "s", STRIKE: "s", DEL: "s",
  CODE: "code", PRE: "pre", BLOCKQUOTE: "blockquote", A: "a", "TG-SPOILER": "span", SPAN: "span" };
function cleanNodes(node) {
  const fragment = document.createDocumentFragment();
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      fragment.append(document.createTextNode(child.textContent));
    } else if (child.nodeType === Node.ELEMENT_NODE) {
      const inner = cleanNodes(child);
      const tag = allowedTags[child.tagName];
      if (!tag) { fragment.append(inner); continue; }
      const element = document.createElement(tag);
      if (tag === "a") {
        const href = child.getAttribute("href") || "";
        element.href = "#";
        element.addEventListener("click", (event) => { event.preventDefault(); openURL(href); });
      }
      if (child.tagName === "TG-SPOILER" || child.classList.contains("tg-spoiler")) element.className = "spoiler";
      element.append(inner);
      fragment.append(element);
    }
  }
  return fragment;
}
function formatted(message) {
  const element = document.createElement("div");
  if (message.html) {
    const parsed = new DOMParser().parseFromString("<body>" + message.text + "</body>", "text/html");
    element.append(cleanNodes(parsed.body));
  } else {
    element.textContent = message.text;
  }
  return element;
}

function inlineKeyboard(message, inChannel) {
  const keyboard = document.createElement("div");
  keyboard.className = "keyboard";
  for (const row of message.buttons) {
    const line = document.createElement("div");
    line.className = "row";
    for (const button of row) {
      const element = document.createElement("button");
      element.type = "button";
      element.textContent = button.text;
      if (button.kind === "url") {
        element.className = "url";
        element.title = button.value;
        element.addEventListener("click", () => openURL(button.value));
      } else if (button.kind === "callback" && !inChannel) {
        element.addEventListener("click", () => act({ action: "press", messageID: message.id, data: button.value }).then(refresh));
      } else {
        element.disabled = true;
      }
      line.append(element);
    }
    keyboard.append(line);
  }
  return keyboard;
}

function bubble(message, inChannel) {
  const element = document.createElement("div");
  element.className = "bubble" + (message.fromBot ? "" : " mine");
  element.append(formatted(message));
  if (message.buttons.length) element.append(inlineKeyboard(message, inChannel));
  return element;
}

async function openURL(url) {
  const result = await act({ action: "openURL", url: url });
  if (!result) return;
  if (result.opened === "bot") { view = { kind: "bot" }; }
  else if (result.opened === "checkout") { await showCheckout(result.invoice); }
  else if (result.opened === "invite") { toast(t("sandbox.page.joined")); }
  else if (result.opened === "joinRequest") { toast(t("sandbox.page.join_request_sent")); }
  else { toast(t("sandbox.page.outside_link", { url: url })); }
  await refresh();
}

function renderPersonas() {
  const select = $("#persona");
  const wanted = state.personas.map((p) => p.id + ":" + p.name).join(",");
  if (select.dataset.list !== wanted) {
    select.innerHTML = "";
    for (const p of state.personas) {
      const option = document.createElement("option");
      option.value = p.id;
      option.textContent = p.name + " (" + p.role + ", " + p.language + ")";
      select.append(option);
    }
    select.dataset.list = wanted;
  }
  select.value = String(persona);
}

function renderChats() {
  const list = $("#chats");
  list.innerHTML = "";
  const entries = [{ kind: "bot", title: "🤖 " + state.botName, note: "@" + state.botUsername }]
    .concat(state.channels.map((c) => ({ kind: "channel", id: c.id, title: "📢 " + c.title,
      note: t(c.username ? "sandbox.page.chat_note_public" : "sandbox.page.chat_note_private", { membership: c.membership }) })));
  for (const entry of entries) {
    const item = document.createElement("div");
    item.className = "chat-item" + ((entry.kind === view.kind && entry.id === view.id) ? " active" : "");
    item.dataset.chat = entry.kind === "bot" ? "bot" : String(entry.id);
    item.textContent = entry.title;
    const note = document.createElement("small");
    note.textContent = entry.note;
    item.append(note);
    item.addEventListener("click", () => { view = entry.kind === "bot" ? { kind: "bot" } : { kind: "channel", id: entry.id }; render(); });
    list.append(item);
  }
}

function renderBotChat() {
  $("#chat-title").textContent = state.botName + " (@" + state.botUsername + ")";
  const messages = $("#messages");
  messages.innerHTML = "";
  if (!state.messages.length) {
    const start = document.createElement("button");
    start.className = "start";
    start.textContent = t("sandbox.page.start");
    start.addEventListener("click", () => act({ action: "send", text: "/start" }).then(refresh));
    messages.append(start);
  }
  for (const message of state.messages) messages.append(bubble(message, false));
  messages.scrollTop = messages.scrollHeight;
  const reply = $("#reply-keyboard");
  reply.innerHTML = "";
  for (const row of state.replyKeyboard || []) {
    const line = document.createElement("div");
    line.className = "row";
    for (const button of row) {
      const element = document.createElement("button");
      element.type = "button";
      element.textContent = button.text;
      if (button.requestChat) element.className = "request-chat";
      element.addEventListener("click", () => button.requestChat ? showPicker(button.requestChat)
        : act({ action: "send", text: button.text }).then(refresh));
      line.append(element);
    }
    reply.append(line);
  }
  $("#composer").hidden = false;
}

function renderChannel(channel) {
  $("#chat-title").textContent = channel.title + (channel.username ? " (@" + channel.username + ")" : "");
  const messages = $("#messages");
  messages.innerHTML = "";
  for (const post of channel.posts) messages.append(bubble(post, true));
  if (!channel.posts.length) {
    const empty = document.createElement("div");
    empty.className = "channel-info";
    empty.textContent = t("sandbox.page.no_posts");
    messages.append(empty);
  }
  const info = document.createElement("div");
  info.className = "channel-info";
  info.append(t("sandbox.page.your_status", { status: channel.membership }));
  // A titled list of people and their status (members, join requests), when there is anyone.
  const people = (heading, id, entries) => {
    if (!entries.length) return;
    const title = document.createElement("div");
    title.textContent = heading;
    const list = document.createElement("ul");
    list.id = id;
    for (const entry of entries) {
      const item = document.createElement("li");
      item.textContent = entry.name + " — " + entry.status;
      list.append(item);
    }
    info.append(title, list);
  };
  people(t("sandbox.page.members"), "members", channel.members);
  people(t("sandbox.page.join_requests"), "join-requests", channel.joinRequests);
  if (["member", "restricted"].includes(channel.membership)) {
    const leave = document.createElement("button");
    leave.type = "button";
    leave.textContent = t("sandbox.page.leave");
    leave.addEventListener("click", () => act({ action: "leave", chat: channel.id }).then(refresh));
    info.append(document.createElement("br"), leave);
  }
  messages.append(info);
  $("#reply-keyboard").innerHTML = "";
  $("#composer").hidden = true;
}

function render() {
  if (!state) return;
  renderPersonas();
  renderChats();
  const channel = view.kind === "channel" ? state.channels.find((c) => c.id === view.id) : null;
  if (view.kind === "channel" && !channel) view = { kind: "bot" };
  if (channel) renderChannel(channel); else renderBotChat();
  const hours = state.clock.advancedHours;
  $("#clock").textContent = "🕒 " + state.clock.now.replace("T", " ").replace("Z", " UTC") + (hours > 0 ? " (+" + Math.round(hours) + " h)" : "");
  for (const answer of state.toasts) {
    if (seenToasts.has(answer.id)) continue;
    seenToasts.add(answer.id);
    if (toastsPrimed) toast(answer.text);
  }
  toastsPrimed = true;
}

let refreshing = null;
let again = false;
async function refresh() {
  if (persona === null) return;
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      state = await request("/sandbox/api/state?persona=" + persona);
      render();
      if (!$("#operator").hidden) await refreshOperator();
      if (openInvoice) await renderCheckout();
    } catch (error) {
      toast(error.message, true);
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; await refresh(); }
}

function showPicker(request) {
  $("#picker-title").textContent = t(request.isChannel ? "sandbox.page.choose_channel" : "sandbox.page.choose_group");
  const list = $("#picker-chats");
  list.innerHTML = "";
  if (!request.chats.length) list.textContent = t("sandbox.page.no_chat_fits");
  for (const chat of request.chats) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = t(chat.isPublic ? "sandbox.page.chat_public" : "sandbox.page.chat_private", { title: chat.title });
    button.addEventListener("click", async () => {
      $("#picker").close();
      await act({ action: "shareChat", chat: chat.id });
      await refresh();
    });
    list.append(button);
  }
  $("#picker").showModal();
}

async function showCheckout(invoice) {
  openInvoice = invoice;
  await renderCheckout();
  if (!$("#checkout").open) $("#checkout").showModal();
}

async function renderCheckout() {
  let invoice;
  try {
    invoice = await request("/sandbox/api/invoice?id=" + encodeURIComponent(openInvoice));
  } catch (error) {
    toast(error.message, true);
    return;
  }
  $("#checkout-title").textContent = invoice.description || t("sandbox.page.order", { id: invoice.orderID });
  $("#checkout-price").textContent = t("sandbox.page.amount", { price: invoice.price, currency: invoice.currency, id: invoice.orderID });
  const coin = $("#checkout-coin");
  const chosen = coin.value;
  coin.innerHTML = "";
  for (const option of invoice.coins) {
    const element = document.createElement("option");
    element.value = option.code;
    element.textContent = option.amount + " " + option.code.toUpperCase();
    coin.append(element);
  }
  if (chosen && invoice.coins.some((c) => c.code === chosen)) coin.value = chosen;
  const payments = $("#checkout-payments");
  payments.innerHTML = "";
  for (const payment of invoice.payments) {
    const item = document.createElement("li");
    item.textContent = t("sandbox.page.payment", {
      id: payment.id, status: payment.status, paid: payment.actuallyPaid, amount: payment.payAmount, coin: payment.coin.toUpperCase() });
    payments.append(item);
  }
}

async function checkout(action) {
  try {
    const result = await request("/sandbox/api/checkout", { invoice: openInvoice, action: action, coin: $("#checkout-coin").value });
    $("#checkout-result").textContent = t("sandbox.page.callbacks", {
      list: result.deliveries.map((d) => d.status + " → HTTP " + d.answer).join(", ") });
  } catch (error) {
    $("#checkout-result").textContent = error.message;
  }
  await renderCheckout();
}

async function refreshOperator() {
  try {
    const report = await request("/sandbox/api/operator");
    $("#ledger").textContent = report.ledger;
    $("#payouts").textContent = report.payouts;
    $("#jobs").textContent = report.jobs;
    $("#wallet").textContent = report.wallet;
    const balanced = $("#balanced");
    balanced.textContent = t(report.balanced ? "sandbox.page.balanced" : "sandbox.page.not_balanced");
    balanced.className = report.balanced ? "ok" : "bad";
  } catch (error) {
    toast(error.message, true);
  }
}

function wire() {
  $("#persona").addEventListener("change", (event) => {
    persona = Number(event.target.value);
    view = { kind: "bot" };
    toastsPrimed = false;
    refresh();
  });
  $("#composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("#text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await act({ action: "send", text: text });
    await refresh();
  });
  $("#picker-cancel").addEventListener("click", () => $("#picker").close());
  $("#add-user").addEventListener("click", () => $("#new-user").showModal());
  $("#new-user-cancel").addEventListener("click", () => $("#new-user").close());
  $("#new-user-form").addEventListener("submit", async () => {
    const result = await act({ action: "addUser", name: $("#new-user-name").value, language: $("#new-user-language").value });
    if (result) { persona = result.persona; view = { kind: "bot" }; $("#new-user-name").value = ""; }
    await refresh();
  });
  $("#advance").addEventListener("click", async () => {
    const hours = Number($("#clock-amount").value) * Number($("#clock-unit").value);
    if (await act({ action: "advanceClock", hours: hours })) toast(t("sandbox.page.time_moved", { hours: hours }));
    await refresh();
  });
  $("#operator-toggle").addEventListener("click", async () => {
    const panel = $("#operator");
    panel.hidden = !panel.hidden;
    if (!panel.hidden) await refreshOperator();
  });
  for (const button of document.querySelectorAll("[data-checkout]")) {
    button.addEventListener("click", () => checkout(button.dataset.checkout));
  }
  $("#page-language").addEventListener("change", (event) => {
    language = event.target.value;
    try { localStorage.setItem("telepay-sandbox-language", language); } catch (error) { /* private mode: not kept */ }
    translatePage();
    if (state) render();
    if (!$("#operator").hidden) refreshOperator();
  });
  $("#checkout-close").addEventListener("click", () => { $("#checkout").close(); openInvoice = null; });
  let pending = null;
  const events = new EventSource("/sandbox/api/events");
  events.onmessage = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh(); }, 100);
  };
}

async function boot() {
  wire();
  await loadStrings();
  const first = await request("/sandbox/api/state?persona=2001");
  persona = first.persona;
  state = first;
  render();
}
boot();
