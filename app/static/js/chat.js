// The messenger page: the REST API for everything stored (media included), Socket.IO for
// what happens live. Tokens live in localStorage and are shared by every open tab: one tab
// at a time refreshes them (navigator.locks), the others pick the new pair up from storage.
// Every text is put into the page with textContent (no HTML from the server or other users
// is ever interpreted), and the page has no inline scripts or handlers (a strict CSP holds).
(function () {
  "use strict";
  const API = "/api/v1";
  const PAGE = 30;
  const CATCH_UP_PAGE = 100;
  const KEYS = { access: "quintet.access", refresh: "quintet.refresh" };
  const SESSION_ENDED = "Your session has ended (you logged out, or it was revoked or expired). Please log in again.";
  const $ = (id) => document.getElementById(id);
  const appView = $("app-view");
  const limits = {
    image: Number(appView.dataset.maxImageBytes) || 10 * 1024 * 1024,
    file: Number(appView.dataset.maxFileBytes) || 10 * 1024 * 1024,
  };
  const state = {
    access: localStorage.getItem(KEYS.access),
    refresh: localStorage.getItem(KEYS.refresh),
    me: null,
    chats: [],
    current: null,
    oldest: null,
    socket: null,
    typingTimers: {},
    typingNames: {},
    lastTypingSent: 0,
    groupMembers: new Map(),
    pendingChats: new Map(),
    readSent: new Map(), // chat id -> the message id this tab last marked read
    replyTo: null, // the message the composer's next text quotes
  };
  const shown = new Map(); // message id -> the last representation rendered
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("quintet.session") : null;

  // --- tokens, shared by the tabs -------------------------------------------------------------
  // localStorage is what a new tab starts from and what "storage" events announce, but its
  // writes reach other tabs' processes with a lag; IndexedDB is read and written through the
  // browser process, so a tab that takes the refresh lock reads there what the previous
  // holder wrote before it let go.
  const sharedStore = (() => {
    let opening = null;
    function open() {
      if (!("indexedDB" in window)) return Promise.resolve(null);
      opening = opening || new Promise((resolve) => {
        let request;
        try { request = indexedDB.open("quintet", 1); } catch (error) { resolve(null); return; }
        request.onupgradeneeded = () => request.result.createObjectStore("session");
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => resolve(null);
        request.onblocked = () => resolve(null);
      });
      return opening;
    }
    async function run(mode, action) {
      const db = await open();
      if (!db) return undefined;
      return new Promise((resolve) => {
        let request;
        try {
          const transaction = db.transaction("session", mode);
          request = action(transaction.objectStore("session"));
          transaction.oncomplete = () => resolve(request.result);
          transaction.onerror = transaction.onabort = () => resolve(undefined);
        } catch (error) {
          resolve(undefined);
        }
      });
    }
    return {
      read: () => run("readonly", (store) => store.get("tokens")),
      write: (tokens) => run("readwrite", (store) => store.put(tokens, "tokens")),
      clear: () => run("readwrite", (store) => store.delete("tokens")),
    };
  })();

  function saveTokens(body) {
    state.access = body.access_token;
    state.refresh = body.refresh_token;
    localStorage.setItem(KEYS.access, state.access);
    localStorage.setItem(KEYS.refresh, state.refresh);
    return sharedStore.write({ access: state.access, refresh: state.refresh });
  }

  function adoptStoredTokens() {
    state.access = localStorage.getItem(KEYS.access);
    state.refresh = localStorage.getItem(KEYS.refresh);
  }

  function clearTokens() {
    state.access = state.refresh = null;
    localStorage.removeItem(KEYS.access);
    localStorage.removeItem(KEYS.refresh);
    sharedStore.clear();
  }

  async function sharedTokens() {
    const tokens = await sharedStore.read();
    if (tokens && tokens.access && tokens.refresh) return tokens;
    return { access: localStorage.getItem(KEYS.access), refresh: localStorage.getItem(KEYS.refresh) };
  }

  function withRefreshLock(task) {
    // One refresh at a time across every tab of this origin; without Web Locks (an insecure
    // context) the check of the shared tokens still spares most duplicate refreshes.
    if (navigator.locks && navigator.locks.request) return navigator.locks.request("quintet.token-refresh", task);
    return task();
  }

  let refreshing = null;
  // `used` is the access token a request or connection was refused with. Answers true when
  // there is a newer access token to try (refreshed here or by another tab).
  function refreshTokens(used) {
    if (refreshing) return refreshing;
    refreshing = withRefreshLock(async () => {
      const shared = await sharedTokens();
      if (shared.access && shared.access !== used) {
        state.access = shared.access; // another tab refreshed while this one waited
        state.refresh = shared.refresh;
        return true;
      }
      if (!shared.refresh) {
        if (state.me) endSession(SESSION_ENDED);
        return false;
      }
      let response;
      try {
        response = await fetch(API + "/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: shared.refresh }),
        });
      } catch (error) {
        return false; // no network: the session may well be fine, try again later
      }
      if (response.status === 401) {
        endSession(SESSION_ENDED);
        return false;
      }
      if (!response.ok) return false;
      await saveTokens(await response.json()); // stored before the lock is let go
      return true;
    }).finally(() => { refreshing = null; });
    return refreshing;
  }

  // The session is gone for good: every tab shows the login form with the reason.
  function endSession(message, { broadcast = true } = {}) {
    clearTokens();
    if (state.socket) { const socket = state.socket; state.socket = null; socket.disconnect(); }
    state.me = null;
    state.current = null;
    showAuth(message);
    if (broadcast && channel) channel.postMessage({ type: "ended", message });
  }

  if (channel) {
    channel.addEventListener("message", (event) => {
      if (event.data && event.data.type === "ended" && state.me) endSession(event.data.message, { broadcast: false });
    });
  }

  window.addEventListener("storage", (event) => {
    if (event.key !== null && event.key !== KEYS.access && event.key !== KEYS.refresh) return;
    const access = localStorage.getItem(KEYS.access);
    if (access) {
      adoptStoredTokens();
      if (!state.me) start(); // signed in from another tab
    } else if (state.me && !localStorage.getItem(KEYS.refresh)) {
      endSession(SESSION_ENDED, { broadcast: false });
    }
  });

  class SessionEnded extends Error {}

  async function api(path, { method = "GET", body, raw = false, retry = true } = {}) {
    const used = state.access;
    const headers = {};
    if (used) headers.Authorization = "Bearer " + used;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      if (retry && (await refreshTokens(used))) return api(path, { method, body, raw, retry: false });
      throw new SessionEnded("Please log in again.");
    }
    if (raw) return response;
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error(problemText(response.status, data, response.statusText));
    return data;
  }

  function problemText(status, data, fallback) {
    const detail = (data && data.detail) || fallback || "Something went wrong.";
    if (status === 429) return "Too many requests: " + detail;
    return detail;
  }

  // --- sign-in ----------------------------------------------------------------------------------
  let authMode = "login";
  document.querySelectorAll("[data-auth-mode]").forEach((tab) => {
    tab.addEventListener("click", () => {
      authMode = tab.dataset.authMode;
      document.querySelectorAll("[data-auth-mode]").forEach((t) => t.classList.toggle("active", t === tab));
      $("auth-name-group").hidden = authMode !== "register";
      $("auth-submit").textContent = authMode === "register" ? "Create account" : "Log in";
    });
  });

  $("auth-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("auth-error").hidden = true;
    const payload = { phone: $("auth-phone").value, password: $("auth-password").value };
    if (authMode === "register") payload.name = $("auth-name").value;
    let response;
    try {
      response = await fetch(API + "/auth/" + authMode, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
    } catch (error) {
      showAuthError("The server cannot be reached; check your connection.");
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      showAuthError(problemText(response.status, data, "Something went wrong."));
      return;
    }
    await saveTokens(data);
    $("auth-password").value = "";
    start();
  });

  function showAuthError(text) {
    $("auth-error").textContent = text;
    $("auth-error").hidden = false;
  }

  $("logout-button").addEventListener("click", async () => {
    const refresh = localStorage.getItem(KEYS.refresh);
    if (refresh) {
      await fetch(API + "/auth/logout", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: refresh }),
      }).catch(() => null);
    }
    endSession("You have logged out.", { broadcast: false });
    if (channel) channel.postMessage({ type: "ended", message: "You logged out in another tab." });
  });

  $("telegram-button").addEventListener("click", async () => {
    try {
      const link = await api("/users/me/telegram", { method: "POST" });
      const url = link && (link.url || link.deep_link || link.link);
      notice(url ? "Open this link to get notifications in Telegram: " + url : "Telegram binding requested.");
      if (url) window.open(url, "_blank", "noopener");
    } catch (error) {
      notice("Telegram notifications are not available: " + error.message);
    }
  });

  function notice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
  }

  function clearNotice() {
    $("notice").hidden = true;
    $("notice").textContent = "";
  }

  function showAuth(message) {
    $("app-view").hidden = true;
    $("auth-view").hidden = false;
    $("auth-notice").textContent = message || "";
    $("auth-notice").hidden = !message;
    document.querySelectorAll(".modal.show").forEach((modal) => window.bootstrap.Modal.getOrCreateInstance(modal).hide());
  }

  // --- dates and sizes ----------------------------------------------------------------------------
  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  // Today: the time; yesterday: "Yesterday" and the time; older: the date (with the year
  // when it is not this year) and the time.
  function formatWhen(iso) {
    const when = new Date(iso);
    const now = new Date();
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (sameDay(when, now)) return time;
    const yesterday = new Date(now);
    yesterday.setDate(now.getDate() - 1);
    if (sameDay(when, yesterday)) return "Yesterday " + time;
    const options = { day: "numeric", month: "short" };
    if (when.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return when.toLocaleDateString([], options) + " " + time;
  }

  function timeElement(iso) {
    const element = document.createElement("time");
    element.dateTime = iso;
    element.title = new Date(iso).toLocaleString();
    element.textContent = formatWhen(iso);
    return element;
  }

  function formatBytes(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(bytes % (1024 * 1024) ? 1 : 0) + " MB";
    if (bytes >= 1024) return Math.ceil(bytes / 1024) + " KB";
    return bytes + " bytes";
  }

  // --- the chat list (kept up to date from events, not re-fetched) --------------------------------
  // It arrives in pages (the X-Next-Offset header names the next one): the first is shown at
  // once and the others are added as they come, so a user in hundreds of chats sees the
  // newest quickly and still gets every chat. A newer load (a reconnect) makes older ones stop.
  let chatListLoads = 0;
  async function loadChats() {
    const load = ++chatListLoads;
    let page = await chatPage(0);
    if (load !== chatListLoads) return;
    const known = new Map(state.chats.map((chat) => [chat.id, chat]));
    state.chats = page.chats.map((chat) => freshest(known.get(chat.id), chat));
    renderChats();
    while (page.next !== null) {
      page = await chatPage(page.next);
      if (load !== chatListLoads) return;
      for (const chat of page.chats) if (!findChat(chat.id)) state.chats.push(freshest(known.get(chat.id), chat));
      renderChats();
    }
  }

  async function chatPage(offset) {
    const response = await api("/chats?offset=" + offset, { raw: true });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error(problemText(response.status, data, response.statusText));
    const next = response.headers.get("X-Next-Offset");
    return { chats: data, next: next === null ? null : Number(next) };
  }

  function chatOrder(a, b) {
    if (a.pinned_at && b.pinned_at) return Date.parse(b.pinned_at) - Date.parse(a.pinned_at);
    if (a.pinned_at) return -1;
    if (b.pinned_at) return 1;
    return Date.parse(b.last_activity_at) - Date.parse(a.last_activity_at);
  }

  // How far a chat's unread count goes: a view counts its chat's messages up to its last
  // message (the server reads both together) and this page moves it on with each message it
  // counts, so a message at or below it is in the count already, whichever came first.
  function countedSeq(chat) {
    return (chat && chat.last_message && chat.last_message.seq) || 0;
  }

  // A view read before messages this page has counted since (a fetch or a list page that
  // crossed their message:new) keeps what the page knows of them.
  function freshest(known, view) {
    if (!known || countedSeq(view) >= countedSeq(known)) return view;
    const { last_message, last_activity_at, unread_count } = known;
    return { ...view, last_message, last_activity_at, unread_count };
  }

  function upsertChat(view) {
    const index = state.chats.findIndex((c) => c.id === view.id);
    const chat = freshest(state.chats[index], view);
    if (index >= 0) state.chats[index] = chat; else state.chats.push(chat);
    if (state.current && state.current.id === chat.id) {
      state.current = chat;
      renderHeader();
      if ($("manage-modal").classList.contains("show")) renderManage();
    }
    renderChats();
  }

  function findChat(chatId) {
    return state.chats.find((c) => c.id === chatId);
  }

  // One chat's view, for a chat this page does not know yet or whose counts it cannot derive.
  function fetchChat(chatId) {
    if (state.pendingChats.has(chatId)) return state.pendingChats.get(chatId);
    const pending = api("/chats/" + chatId)
      .then((chat) => { upsertChat(chat); return chat; })
      .catch(() => null)
      .finally(() => state.pendingChats.delete(chatId));
    state.pendingChats.set(chatId, pending);
    return pending;
  }

  function renderChats() {
    if (!state.me) return; // signed out meanwhile
    state.chats.sort(chatOrder);
    const list = $("chat-list");
    list.replaceChildren();
    if (!state.chats.length) {
      const empty = document.createElement("div");
      empty.className = "small text-body-secondary p-2";
      empty.textContent = "No chats yet: find someone above or create a group.";
      list.append(empty);
    }
    for (const chat of state.chats) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "list-group-item list-group-item-action d-flex gap-2 align-items-start";
      item.dataset.chatId = chat.id;
      item.dataset.testid = "chat-item";
      if (state.current && state.current.id === chat.id) item.classList.add("active");
      const body = document.createElement("div");
      body.className = "flex-grow-1 text-truncate";
      const title = document.createElement("div");
      title.className = "fw-semibold text-truncate";
      if (chat.type === "direct") {
        const other = chat.members.find((m) => m.id !== state.me.id);
        const dot = document.createElement("span");
        dot.className = "online-dot me-1" + (other && other.online ? " on" : "");
        dot.dataset.userId = other ? other.id : "";
        dot.title = other && other.online ? "online" : "offline";
        title.append(dot);
      }
      title.append((chat.pinned ? "📌 " : "") + chat.title);
      const last = document.createElement("div");
      last.className = "small text-body-secondary text-truncate";
      last.dataset.testid = "chat-last";
      if (chat.last_message) {
        last.append(timeElement(chat.last_message.created_at), " · " + summary(chat.last_message));
      } else {
        last.textContent = "No messages yet";
      }
      body.append(title, last);
      item.append(body);
      if (chat.unread_count > 0) {
        const badge = document.createElement("span");
        badge.className = "badge text-bg-primary rounded-pill";
        badge.dataset.testid = "unread";
        badge.textContent = chat.unread_count;
        item.append(badge);
      }
      item.addEventListener("click", () => openChat(chat.id));
      list.append(item);
    }
  }

  function summary(message) {
    if (message.deleted) return "Message deleted";
    if (message.type === "image") return "📷 " + (message.text || "Photo");
    if (message.type === "file") return "📎 " + (message.attachment ? message.attachment.name : "File");
    return message.text || "";
  }

  // A new message changes its chat's last message, activity and (for others' messages in a
  // chat that is not open) unread count: all known here, so no list reload.
  function applyNewMessage(message, open) {
    const chat = findChat(message.chat_id);
    if (!chat) { fetchChat(message.chat_id); return; }
    // A view read after this message was stored (a chat:new, a list page or a fetch: the
    // views are read off the request path) shows and counts it already.
    if (message.seq ? message.seq <= countedSeq(chat) : chat.last_message && chat.last_message.id === message.id) {
      renderChats();
      return;
    }
    chat.last_message = message;
    chat.last_activity_at = message.created_at;
    if (message.sender_id !== state.me.id && !open) chat.unread_count += 1;
    renderChats();
  }

  function applyChangedMessage(message) {
    const chat = findChat(message.chat_id);
    if (chat && chat.last_message && chat.last_message.id === message.id) {
      chat.last_message = { ...chat.last_message, ...message };
      renderChats();
    }
  }

  function showPane(open) {
    $("app-view").classList.toggle("chat-open", open);
  }

  $("back-button").addEventListener("click", () => showPane(false));

  async function openChat(chatId) {
    clearNotice();
    state.current = findChat(chatId) || (await api("/chats/" + chatId));
    state.oldest = null;
    $("message-items").replaceChildren();
    $("typing").textContent = "";
    $("composer").hidden = false;
    $("pin-button").hidden = $("mute-button").hidden = false;
    renderHeader();
    renderChats();
    cancelReply();
    showPane(true);
    await loadOlder();
    scrollToBottom();
    markRead();
  }

  function closeChat() {
    state.current = null;
    $("message-items").replaceChildren();
    $("composer").hidden = true;
    $("pin-button").hidden = $("mute-button").hidden = $("manage-button").hidden = true;
    $("chat-title").textContent = "Pick a chat";
    $("chat-subtitle").textContent = "";
    $("older-button").hidden = true;
    renderBlockButton();
    showPane(false);
    const modal = $("manage-modal");
    if (modal.classList.contains("show")) window.bootstrap.Modal.getOrCreateInstance(modal).hide();
  }

  function renderHeader() {
    const chat = state.current;
    if (!chat || !state.me) return;
    $("chat-title").textContent = chat.title;
    const online = chat.members.filter((m) => m.online && m.id !== state.me.id).length;
    $("chat-subtitle").textContent = chat.type === "group"
      ? chat.members.length + " members, " + online + " online"
      : (online ? "online" : "offline");
    $("pin-button").textContent = chat.pinned ? "Unpin" : "Pin";
    $("mute-button").textContent = chat.muted ? "Unmute" : "Mute";
    $("manage-button").hidden = chat.type !== "group";
    renderBlockButton();
  }

  async function loadOlder() {
    const chat = state.current;
    const query = "?limit=" + PAGE + (state.oldest ? "&before=" + state.oldest : "");
    const page = await api("/chats/" + chat.id + "/messages" + query);
    if (!state.current || state.current.id !== chat.id) return;
    const container = $("messages");
    const previousHeight = container.scrollHeight;
    for (const message of page.items) {
      if (!document.querySelector('#message-items [data-message-id="' + message.id + '"]')) {
        $("message-items").prepend(renderMessage(message));
      }
    }
    state.oldest = page.next_cursor;
    $("older-button").hidden = !page.next_cursor;
    container.scrollTop += container.scrollHeight - previousHeight;
  }

  $("older-button").addEventListener("click", loadOlder);
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop === 0 && state.oldest) loadOlder();
  });

  function senderName(message) {
    const member = state.current && state.current.members.find((m) => m.id === message.sender_id);
    return member ? member.name : "Someone";
  }

  function renderMessage(message) {
    shown.set(message.id, message);
    const row = document.createElement("div");
    row.className = "message mb-2";
    row.dataset.messageId = message.id;
    row.dataset.createdAt = message.created_at;
    row.dataset.testid = "message";
    if (message.type === "system") {
      row.classList.add("system");
      const text = document.createElement("span");
      text.className = "small text-body-secondary fst-italic";
      text.textContent = message.text;
      row.append(text);
      return row;
    }
    const mine = message.sender_id === state.me.id;
    if (mine) row.classList.add("mine");
    const bubble = document.createElement("div");
    bubble.className = "bubble border rounded p-2";
    const meta = document.createElement("div");
    meta.className = "small text-body-secondary meta";
    meta.append((mine ? "You" : senderName(message)) + " · ", timeElement(message.created_at));
    if (message.edited_at) meta.append(" · edited");
    if (mine) meta.append(...renderTicks(message));
    bubble.append(meta);
    if (message.deleted) {
      const gone = document.createElement("div");
      gone.className = "fst-italic text-body-secondary";
      gone.textContent = "Message deleted";
      bubble.append(gone);
      row.append(bubble);
      return row;
    }
    bubble.append(...renderContext(message));
    if (message.attachment) bubble.append(renderAttachment(message.attachment));
    if (message.text) {
      const text = document.createElement("div");
      text.className = "text";
      text.dataset.testid = "message-text";
      text.textContent = message.text;
      bubble.append(text);
    }
    const like = document.createElement("button");
    like.type = "button";
    like.className = "btn btn-sm btn-link p-0 like-button";
    like.dataset.liked = message.liked_by_me ? "1" : "";
    like.dataset.likes = message.likes;
    paintLike(like);
    like.addEventListener("click", async () => {
      const liked = !like.dataset.liked;
      try {
        const result = await api("/messages/" + message.id + "/like", { method: liked ? "PUT" : "DELETE" });
        like.dataset.liked = result.liked_by_me ? "1" : "";
        like.dataset.likes = result.likes;
        paintLike(like);
      } catch (error) {
        notice(error.message);
      }
    });
    bubble.append(like, ...replyActions(message));
    if (mine) bubble.append(...ownActions(message, bubble));
    row.append(bubble);
    return row;
  }

  // My own messages can be edited (text) and deleted; the events update every other page.
  function ownActions(message, bubble) {
    const actions = [];
    if (message.type === "text" && !message.forwarded_from) {
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "btn btn-sm btn-link p-0 ms-2 edit-button";
      edit.dataset.testid = "edit-message";
      edit.textContent = "Edit";
      edit.addEventListener("click", () => startEditing(message, bubble));
      actions.push(edit);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn-sm btn-link p-0 ms-2 text-danger delete-button";
    remove.dataset.testid = "delete-message";
    remove.textContent = "Delete";
    remove.addEventListener("click", async () => {
      if (!window.confirm("Delete this message for everyone?")) return;
      try {
        await api("/messages/" + message.id, { method: "DELETE" });
        const gone = { ...findShown(message.id), deleted: true, text: null, attachment: null };
        replaceMessage(gone);
        applyChangedMessage(gone);
      } catch (error) { notice("The message was not deleted: " + error.message); }
    });
    actions.push(remove);
    return actions;
  }

  function startEditing(message, bubble) {
    const text = bubble.querySelector(".text");
    if (!text || bubble.querySelector("form")) return;
    const form = document.createElement("form");
    form.className = "d-flex gap-1 my-1 edit-form";
    const input = document.createElement("input");
    input.className = "form-control form-control-sm";
    input.maxLength = 4000;
    input.value = message.text;
    input.dataset.testid = "edit-input";
    input.setAttribute("aria-label", "Edit the message");
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "btn btn-sm btn-primary";
    save.textContent = "Save";
    save.dataset.testid = "edit-save";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "btn btn-sm btn-outline-secondary";
    cancel.textContent = "Cancel";
    form.append(input, save, cancel);
    text.hidden = true;
    text.after(form);
    input.focus();
    cancel.addEventListener("click", () => { form.remove(); text.hidden = false; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!input.value.trim()) { notice("A message cannot be blank; delete it instead."); return; }
      try {
        const edited = await api("/messages/" + message.id, { method: "PATCH", body: { text: input.value } });
        replaceMessage(edited);
        applyChangedMessage(edited);
      } catch (error) { notice("The message was not changed: " + error.message); }
    });
  }

  function paintLike(button) {
    button.textContent = (button.dataset.liked ? "♥ " : "♡ ") + button.dataset.likes;
  }

  function renderAttachment(attachment) {
    if (attachment.kind === "image") {
      const img = document.createElement("img");
      img.className = "attachment mb-1";
      img.alt = attachment.name;
      img.dataset.testid = "message-image";
      if (attachment.width && attachment.height) { img.width = attachment.width; img.height = attachment.height; }
      // Attachments need the bearer token, which an <img src> cannot send.
      api((attachment.preview_url || attachment.url).replace(API, ""), { raw: true })
        .then((response) => (response.ok ? response.blob() : Promise.reject(new Error("unavailable"))))
        .then((blob) => { img.src = URL.createObjectURL(blob); })
        .catch(() => { img.alt = attachment.name + " (not available)"; });
      img.addEventListener("click", () => download(attachment));
      return img;
    }
    const link = document.createElement("button");
    link.type = "button";
    link.className = "btn btn-sm btn-outline-secondary mb-1 file-button";
    link.dataset.testid = "message-file";
    link.textContent = "📎 " + attachment.name + " (" + formatBytes(attachment.size) + ")";
    link.addEventListener("click", () => download(attachment));
    return link;
  }

  async function download(attachment) {
    try {
      const blob = await (await api(attachment.url.replace(API, ""), { raw: true })).blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = attachment.name;
      a.click();
    } catch (error) {
      notice("The download failed: " + error.message);
    }
  }

  function scrollToBottom() {
    $("messages").scrollTop = $("messages").scrollHeight;
  }

  function newestShownId() {
    const items = document.querySelectorAll("#message-items [data-message-id]");
    return items.length ? items[items.length - 1].dataset.messageId : null;
  }

  // Marks the open chat read up to its newest shown message (a burst of messages gives one
  // request), and clears its badge from the answer.
  let readTimer = null;
  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(sendRead, 150);
  }

  async function sendRead() {
    const chat = state.current;
    if (!chat) return;
    const newest = newestShownId();
    if (!newest) return;
    state.readSent.set(chat.id, newest);
    try {
      const result = await api("/chats/" + chat.id + "/read", { method: "POST", body: { message_id: newest } });
      const listed = findChat(chat.id);
      if (listed && result) {
        listed.unread_count = result.unread_count;
        renderChats();
      }
    } catch (error) {
      if (!(error instanceof SessionEnded)) notice("Could not mark the chat read: " + error.message);
    }
  }

  $("pin-button").addEventListener("click", async () => {
    try {
      upsertChat(await api("/chats/" + state.current.id + "/pin", { method: state.current.pinned ? "DELETE" : "PUT" }));
    } catch (error) { notice(error.message); }
  });

  $("mute-button").addEventListener("click", async () => {
    try {
      upsertChat(await api("/chats/" + state.current.id + "/mute", { method: state.current.muted ? "DELETE" : "PUT" }));
    } catch (error) { notice(error.message); }
  });

  // --- sending ------------------------------------------------------------------------------------
  function send(payload) {
    // While the socket is down (reconnecting), REST stores the message just the same.
    if (!state.socket || !state.socket.connected) {
      const { chat_id: chatId, ...body } = payload;
      return api("/chats/" + chatId + "/messages", { method: "POST", body });
    }
    return new Promise((resolve, reject) => {
      state.socket.timeout(15000).emit("message:send", payload, (err, ack) => {
        if (err) return reject(new Error("The server did not answer."));
        if (ack && ack.error) return reject(new Error(ack.error.detail));
        resolve(ack);
      });
    });
  }

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("message-input").value;
    if (!text.trim() || !state.current) return;
    $("message-input").value = "";
    state.lastTypingSent = 0; // sending ends this burst of typing; the next keystroke starts one
    try {
      const message = await send(withReply({ chat_id: state.current.id, type: "text", text }));
      cancelReply();
      addMessage(message);
      applyNewMessage(message, true);
    } catch (error) {
      notice(error.message);
      if (!$("message-input").value) $("message-input").value = text;
    }
  });

  $("message-input").addEventListener("input", () => {
    const now = Date.now();
    if (state.current && state.socket && state.socket.connected && now - state.lastTypingSent > 2500) {
      state.lastTypingSent = now;
      state.socket.emit("typing", { chat_id: state.current.id });
    }
  });

  function readAsDataURL(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error("The file cannot be read."));
      reader.readAsDataURL(file);
    });
  }

  // Media goes through REST (Socket.IO frames are small); XMLHttpRequest reports upload progress.
  function postWithProgress(path, body, onProgress) {
    return new Promise((resolve, reject) => {
      const used = state.access;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", API + path);
      if (used) xhr.setRequestHeader("Authorization", "Bearer " + used);
      xhr.setRequestHeader("Content-Type", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (error) { data = null; }
        resolve({ status: xhr.status, data, used });
      });
      xhr.addEventListener("error", () => reject(new Error("the connection failed")));
      xhr.addEventListener("abort", () => reject(new Error("the upload was cancelled")));
      xhr.send(body);
    });
  }

  function showUpload(label, fraction) {
    $("upload").hidden = false;
    $("upload-label").textContent = label;
    $("upload-progress").value = Math.round(fraction * 100);
  }

  function tooBig(kind, size) {
    const what = kind === "image" ? "This image" : "This file";
    return what + " is too big: " + formatBytes(size) + ", the limit is " + formatBytes(limits[kind]) + ".";
  }

  async function sendMedia(kind, file) {
    const chat = state.current;
    if (!file || !chat) return;
    clearNotice();
    if (file.size > limits[kind]) { notice(tooBig(kind, file.size)); return; }
    if (!file.size) { notice("This file is empty."); return; }
    const attachment = { data: await readAsDataURL(file), name: file.name.slice(0, 255) || (kind === "image" ? "photo" : "file") };
    if (kind === "file" && /^[\w.+-]+\/[\w.+-]+$/.test(file.type)) attachment.content_type = file.type;
    const body = JSON.stringify({ type: kind, attachment });
    const label = "Sending " + attachment.name + " (" + formatBytes(file.size) + ")";
    const progress = (fraction) => showUpload(label, fraction);
    const path = "/chats/" + chat.id + "/messages";
    showUpload(label, 0);
    try {
      let result = await postWithProgress(path, body, progress);
      if (result.status === 401 && (await refreshTokens(result.used))) result = await postWithProgress(path, body, progress);
      if (result.status === 201 && result.data) {
        addMessage(result.data);
        applyNewMessage(result.data, true);
      } else if (result.status === 401) {
        throw new Error("please log in again");
      } else if (result.status === 413) {
        notice(tooBig(kind, file.size) + " (" + problemText(413, result.data, "") + ")");
      } else {
        notice("The " + kind + " was not sent: " + problemText(result.status, result.data, "error " + result.status));
      }
    } catch (error) {
      notice("The " + kind + " was not sent: " + error.message + ".");
    } finally {
      $("upload").hidden = true;
    }
  }

  for (const [kind, input] of [["image", "image-input"], ["file", "file-input"]]) {
    $(input).addEventListener("change", async () => {
      const file = $(input).files[0];
      try { await sendMedia(kind, file); } finally { $(input).value = ""; }
    });
  }

  // Messages go into the open chat in time order, whichever way they arrive (live, sent,
  // caught up after a reconnect).
  function addMessage(message) {
    if (!state.current || message.chat_id !== state.current.id) return;
    if (document.querySelector('#message-items [data-message-id="' + message.id + '"]')) return;
    const container = $("messages");
    const atBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
    const items = $("message-items");
    const row = renderMessage(message);
    const at = Date.parse(message.created_at);
    let after = items.lastElementChild;
    while (after && Date.parse(after.dataset.createdAt) > at) after = after.previousElementSibling;
    if (after) after.after(row); else items.prepend(row);
    if (atBottom || message.sender_id === state.me.id || row === items.lastElementChild) scrollToBottom();
  }

  // --- replies, forwards and ticks ------------------------------------------------------------
  // A reply quotes a message of the open chat (shown above the composer until sent or
  // cancelled); a forward copies a message into another chat of mine. Ticks on my messages
  // in direct chats: ✓ sent, ✓✓ delivered (the other side's page received it), coloured ✓✓
  // read; they follow the other member's markers (the chat view's peer_*_seq) live.
  function quoteText(quote) {
    return (quote.sender_name || "Someone") + ": " + (quote.deleted ? "Message deleted" : quote.text || "");
  }

  function renderContext(message) {
    const parts = [];
    if (message.forwarded_from) {
      const from = document.createElement("div");
      from.className = "small fst-italic text-body-secondary";
      from.dataset.testid = "message-forwarded";
      from.textContent = "Forwarded from " + (message.forwarded_from.name || "someone");
      parts.push(from);
    }
    if (message.reply_to) {
      const quote = document.createElement("div");
      quote.className = "quote small text-truncate";
      quote.dataset.testid = "message-quote";
      quote.textContent = quoteText(message.reply_to);
      quote.title = "Show the quoted message";
      quote.addEventListener("click", () => showOriginal(message.reply_to.id));
      parts.push(quote);
    }
    return parts;
  }

  function showOriginal(messageId) {
    const row = document.querySelector('#message-items [data-message-id="' + messageId + '"]');
    if (!row) { notice("The quoted message is further back: load older messages to see it."); return; }
    row.scrollIntoView({ block: "center" });
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 1500);
  }

  function replyActions(message) {
    const reply = document.createElement("button");
    reply.type = "button";
    reply.className = "btn btn-sm btn-link p-0 ms-2 reply-button";
    reply.dataset.testid = "reply-message";
    reply.textContent = "Reply";
    reply.addEventListener("click", () => startReply(message));
    const forward = document.createElement("button");
    forward.type = "button";
    forward.className = "btn btn-sm btn-link p-0 ms-2 forward-button";
    forward.dataset.testid = "forward-message";
    forward.textContent = "Forward";
    forward.addEventListener("click", () => chooseForwardTarget(message));
    return [reply, forward];
  }

  function startReply(message) {
    state.replyTo = message;
    const name = message.sender_id === state.me.id ? "You" : senderName(message);
    $("reply-bar-text").textContent = "Replying to " + quoteText({
      sender_name: name, text: message.text || summary(message), deleted: message.deleted,
    });
    $("reply-bar").hidden = false;
    $("message-input").focus();
  }

  function cancelReply() {
    state.replyTo = null;
    $("reply-bar").hidden = true;
    $("reply-bar-text").textContent = "";
  }

  $("reply-cancel").addEventListener("click", cancelReply);

  function withReply(payload) {
    const quoted = state.replyTo;
    return quoted && quoted.chat_id === payload.chat_id ? { ...payload, reply_to_id: quoted.id } : payload;
  }

  function chooseForwardTarget(message) {
    const targets = $("forward-targets");
    targets.replaceChildren();
    for (const chat of state.chats) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "list-group-item list-group-item-action";
      item.dataset.testid = "forward-target";
      item.textContent = chat.title;
      item.addEventListener("click", () => forwardTo(chat.id, message));
      targets.append(item);
    }
    window.bootstrap.Modal.getOrCreateInstance($("forward-modal")).show();
  }

  async function forwardTo(chatId, message) {
    window.bootstrap.Modal.getOrCreateInstance($("forward-modal")).hide();
    try {
      const forwarded = await send({ chat_id: chatId, forward_from_id: message.id });
      addMessage(forwarded);
      applyNewMessage(forwarded, Boolean(state.current && state.current.id === chatId));
    } catch (error) {
      notice("The message was not forwarded: " + error.message);
    }
  }

  function receiptsOf(chatId) {
    return [findChat(chatId), state.current].filter((chat) => chat && chat.id === chatId);
  }

  function tickState(seq) {
    const chat = state.current && receiptsOf(state.current.id)[0];
    if (!chat || chat.type !== "direct") return null;
    if (seq <= (chat.peer_read_seq || 0)) return "read";
    if (seq <= (chat.peer_delivered_seq || 0)) return "delivered";
    return "sent";
  }

  function paintTick(ticks) {
    const tick = tickState(Number(ticks.dataset.seq));
    ticks.dataset.state = tick || "";
    ticks.textContent = tick === "sent" ? "✓" : tick ? "✓✓" : "";
    ticks.title = tick || "";
  }

  function renderTicks(message) {
    if (!tickState(message.seq)) return [];
    const ticks = document.createElement("span");
    ticks.className = "ticks";
    ticks.dataset.testid = "ticks";
    ticks.dataset.seq = message.seq;
    paintTick(ticks);
    return [ticks];
  }

  function moveReceipts(chatId, delivered, read) {
    for (const chat of receiptsOf(chatId)) {
      chat.peer_delivered_seq = Math.max(chat.peer_delivered_seq || 0, delivered || 0, read || 0);
      if (read) chat.peer_read_seq = Math.max(chat.peer_read_seq || 0, read);
    }
    if (state.current && state.current.id === chatId) document.querySelectorAll("#message-items .ticks").forEach(paintTick);
  }

  // This page received what is in its chats: on each new message, and once the chats are
  // loaded after a (re)connect, for the direct chats whose newest message is someone else's.
  function acknowledgeChats() {
    if (!state.socket || !state.me) return;
    for (const chat of state.chats) {
      if (chat.type === "direct" && chat.last_message && chat.last_message.sender_id !== state.me.id) {
        state.socket.emit("message:delivered", { chat_id: chat.id });
      }
    }
  }

  function listenForReceipts(socket) {
    socket.on("connect", () => catchUp().then(acknowledgeChats));
    socket.on("message:new", (message) => {
      const chat = findChat(message.chat_id);
      if (chat && chat.type === "direct" && message.sender_id && message.sender_id !== state.me.id) {
        socket.emit("message:delivered", { chat_id: message.chat_id, message_id: message.id });
      }
    });
    socket.on("message:delivered", (event) => {
      if (event.user_id !== state.me.id) moveReceipts(event.chat_id, event.seq, 0);
    });
    socket.on("read", (event) => {
      if (event.user_id !== state.me.id) moveReceipts(event.chat_id, event.seq, event.seq);
    });
  }

  // --- people and groups ----------------------------------------------------------------------
  async function searchPeople(query, onPick, target, exclude = () => false) {
    target.replaceChildren();
    if (!query.trim()) return;
    let people;
    try {
      people = await api("/users?search=" + encodeURIComponent(query.trim()));
    } catch (error) {
      target.textContent = error.message;
      return;
    }
    people = people.filter((person) => !exclude(person));
    if (!people.length) {
      target.textContent = "Nobody found.";
      return;
    }
    for (const person of people) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "list-group-item list-group-item-action";
      item.textContent = person.name + (person.username ? " @" + person.username : "") + (person.online ? " · online" : "");
      item.addEventListener("click", () => onPick(person));
      target.append(item);
    }
  }

  $("people-search-button").addEventListener("click", () =>
    searchPeople($("people-search").value, async (person) => {
      try {
        const chat = await api("/chats", { method: "POST", body: { type: "direct", member_id: person.id } });
        $("people-results").replaceChildren();
        $("people-search").value = "";
        upsertChat(chat);
        openChat(chat.id);
      } catch (error) { notice(error.message); }
    }, $("people-results")));
  $("people-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); $("people-search-button").click(); }
  });

  $("group-search-button").addEventListener("click", () =>
    searchPeople($("group-search").value, (person) => {
      state.groupMembers.set(person.id, person.name);
      $("group-members").textContent = ["you", ...state.groupMembers.values()].join(", ");
    }, $("group-results")));

  $("group-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const chat = await api("/chats", {
        method: "POST",
        body: { type: "group", title: $("group-title").value, member_ids: [...state.groupMembers.keys()] },
      });
      state.groupMembers.clear();
      $("group-members").textContent = "only you";
      $("group-results").replaceChildren();
      $("group-form").reset();
      window.bootstrap.Modal.getOrCreateInstance($("group-modal")).hide();
      upsertChat(chat);
      await openChat(chat.id);
      if (invitedText(chat)) notice(invitedText(chat));
    } catch (error) {
      notice(error.message);
    }
  });

  // --- managing a group: rename, add, remove, leave ---------------------------------------------
  function manageError(text) {
    $("manage-error").textContent = text || "";
    $("manage-error").hidden = !text;
  }

  function renderManage() {
    const chat = state.current;
    if (!chat || chat.type !== "group") return;
    const owner = chat.owner_id === state.me.id;
    $("manage-modal-title").textContent = chat.title;
    if (document.activeElement !== $("rename-title")) $("rename-title").value = chat.title;
    $("rename-form").hidden = !owner;
    $("manage-add").hidden = !owner;
    const list = $("manage-members");
    list.replaceChildren();
    for (const member of chat.members) {
      const item = document.createElement("li");
      item.className = "list-group-item d-flex align-items-center gap-2 px-0";
      item.dataset.userId = member.id;
      const dot = document.createElement("span");
      dot.className = "online-dot" + (member.online ? " on" : "");
      dot.dataset.userId = member.id;
      const name = document.createElement("span");
      name.className = "me-auto text-truncate";
      name.textContent = member.name + (member.id === state.me.id ? " (you)" : "") + (member.role === "owner" ? " · owner" : "");
      item.append(dot, name);
      if (owner && member.id !== state.me.id) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "btn btn-sm btn-outline-danger";
        remove.textContent = "Remove";
        remove.dataset.testid = "remove-member";
        remove.addEventListener("click", async () => {
          manageError("");
          try {
            await api("/chats/" + chat.id + "/members/" + member.id, { method: "DELETE" });
            await fetchChat(chat.id);
          } catch (error) { manageError(error.message); }
        });
        item.append(remove);
      }
      list.append(item);
    }
  }

  $("manage-modal").addEventListener("show.bs.modal", () => {
    manageError("");
    $("manage-results").replaceChildren();
    $("manage-search").value = "";
    renderManage();
  });

  $("rename-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    manageError("");
    const title = $("rename-title").value.trim();
    if (!title) { manageError("The title cannot be blank."); return; }
    try {
      $("rename-title").blur();
      upsertChat(await api("/chats/" + state.current.id, { method: "PATCH", body: { title } }));
    } catch (error) { manageError(error.message); }
  });

  $("manage-search-button").addEventListener("click", () => {
    manageError("");
    const chat = state.current;
    searchPeople($("manage-search").value, async (person) => {
      try {
        const result = await api("/chats/" + chat.id + "/members", { method: "POST", body: { user_ids: [person.id] } });
        upsertChat(result);
        $("manage-results").replaceChildren();
        $("manage-search").value = "";
        if (invitedText(result)) notice(invitedText(result));
      } catch (error) { manageError(error.message); }
    }, $("manage-results"), (person) => chat.members.some((m) => m.id === person.id));
  });
  $("manage-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); $("manage-search-button").click(); }
  });

  $("leave-button").addEventListener("click", async () => {
    const chat = state.current;
    if (!chat || !window.confirm("Leave " + chat.title + "?")) return;
    manageError("");
    try {
      await api("/chats/" + chat.id + "/members/" + state.me.id, { method: "DELETE" });
      removeChat(chat.id);
    } catch (error) { manageError(error.message); }
  });

  function removeChat(chatId) {
    state.chats = state.chats.filter((c) => c.id !== chatId);
    if (state.current && state.current.id === chatId) closeChat();
    renderChats();
  }

  // --- my profile and avatar -----------------------------------------------------------------------
  function profileError(text) {
    $("profile-error").textContent = text || "";
    $("profile-error").hidden = !text;
  }

  function renderMe() {
    const me = state.me;
    $("me-name").textContent = me.name + " · " + me.phone;
    const url = me.avatar ? me.avatar["100"] || me.avatar.original : null;
    for (const id of ["me-avatar", "profile-avatar"]) {
      $(id).hidden = !url;
      if (url) $(id).src = url; else $(id).removeAttribute("src");
    }
    $("avatar-remove").hidden = !url;
  }

  $("profile-modal").addEventListener("show.bs.modal", () => {
    profileError("");
    $("profile-name").value = state.me.name;
    $("profile-username").value = state.me.username || "";
    $("profile-bio").value = state.me.bio || "";
  });

  $("profile-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    profileError("");
    const name = $("profile-name").value.trim();
    if (!name) { profileError("The name cannot be blank."); return; }
    const username = $("profile-username").value.trim().replace(/^@/, "");
    try {
      state.me = await api("/users/me", {
        method: "PATCH",
        body: { name, username: username || null, bio: $("profile-bio").value },
      });
      renderMe();
      window.bootstrap.Modal.getOrCreateInstance($("profile-modal")).hide();
    } catch (error) { profileError(error.message); }
  });

  $("avatar-input").addEventListener("change", async () => {
    const file = $("avatar-input").files[0];
    $("avatar-input").value = "";
    if (!file) return;
    profileError("");
    if (file.size > limits.image) { profileError(tooBig("image", file.size)); return; }
    try {
      state.me = await api("/users/me/avatar", { method: "PUT", body: { image: await readAsDataURL(file) } });
      renderMe();
    } catch (error) { profileError("The photo was not saved: " + error.message); }
  });

  $("avatar-remove").addEventListener("click", async () => {
    profileError("");
    try {
      await api("/users/me/avatar", { method: "DELETE" });
      state.me = await api("/users/me");
      renderMe();
    } catch (error) { profileError(error.message); }
  });

  // --- group invitations: adds my group_adds setting refused wait here for my answer ----------
  state.invitations = [];

  async function loadInvitations() {
    try {
      state.invitations = await api("/invitations");
    } catch (error) {
      if (!(error instanceof SessionEnded)) notice("Could not load your invitations: " + error.message);
      return;
    }
    renderInvitations();
  }

  function upsertInvitation(invitation) {
    state.invitations = [invitation, ...state.invitations.filter((i) => i.id !== invitation.id)];
    renderInvitations();
  }

  function dropInvitations(keep) {
    state.invitations = state.invitations.filter(keep);
    renderInvitations();
  }

  function renderInvitations() {
    const box = $("invitations");
    box.replaceChildren();
    box.hidden = !state.invitations.length;
    for (const invitation of state.invitations) {
      const item = document.createElement("div");
      item.className = "list-group-item";
      item.dataset.testid = "invitation";
      const title = document.createElement("div");
      title.className = "fw-semibold text-truncate";
      title.textContent = invitation.chat_title;
      const about = document.createElement("div");
      about.className = "small text-body-secondary text-truncate";
      const members = invitation.member_count === 1 ? "1 member" : invitation.member_count + " members";
      about.textContent = "Invited by " + invitation.inviter_name + " · " + members;
      const actions = document.createElement("div");
      actions.className = "d-flex gap-2 mt-1";
      for (const [label, accept, style] of [["Accept", true, "btn-primary"], ["Decline", false, "btn-outline-secondary"]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-sm " + style;
        button.dataset.testid = accept ? "invitation-accept" : "invitation-decline";
        button.textContent = label;
        button.addEventListener("click", () => answerInvitation(invitation, accept));
        actions.append(button);
      }
      item.append(title, about, actions);
      box.append(item);
    }
  }

  async function answerInvitation(invitation, accept) {
    try {
      const chat = await api("/invitations/" + invitation.id + "/" + (accept ? "accept" : "decline"), { method: "POST" });
      dropInvitations((i) => i.id !== invitation.id);
      if (chat) { upsertChat(chat); openChat(chat.id); }
    } catch (error) {
      if (error instanceof SessionEnded) return;
      notice("Could not answer the invitation: " + error.message);
      loadInvitations(); // it may be gone (declined in another tab, or joined meanwhile)
    }
  }

  // What the owner is told when some of those they added were invited instead.
  function invitedText(result) {
    const count = (result && result.invited && result.invited.length) || 0;
    if (!count) return "";
    return (count === 1 ? "1 person was" : count + " people were") + " invited: they join once they accept.";
  }

  // --- live events ------------------------------------------------------------------------------
  function setStatus(live) {
    $("socket-status").textContent = live ? "live" : "offline";
    $("socket-status").className = "badge " + (live ? "text-bg-success" : "text-bg-secondary");
  }

  function connectSocket() {
    if (state.socket) state.socket.disconnect();
    let used = null; // the access token of the latest connection attempt
    // WebSocket only: no long-polling session to pin to one replica behind a load balancer.
    const socket = io({
      transports: ["websocket"],
      auth: (cb) => { used = state.access; cb({ token: used }); },
    });
    state.socket = socket;
    let retryTimer = null;

    // The server closed the connection or refused it for its token: get a fresh token
    // (from another tab or by refreshing) and connect again; without the network, retry.
    async function reconnect() {
      clearTimeout(retryTimer);
      const fresh = await refreshTokens(used);
      if (socket !== state.socket) return;
      if (fresh) socket.connect();
      else if (localStorage.getItem(KEYS.refresh)) retryTimer = setTimeout(reconnect, 3000);
    }

    socket.on("connect", () => {
      setStatus(true);
      catchUp();
    });
    socket.on("disconnect", (reason) => {
      setStatus(false);
      if (socket !== state.socket) return;
      // "io server disconnect": the server closed it (its access token expired, see
      // "session:expired"); other drops reconnect by themselves.
      if (reason === "io server disconnect") reconnect();
    });
    socket.on("connect_error", (error) => {
      if (socket !== state.socket) return;
      if (/expired|not valid|required|revoked|log in|session/i.test(error.message)) reconnect();
      else if (!socket.active) { clearTimeout(retryTimer); retryTimer = setTimeout(() => socket.connect(), 3000); }
    });
    socket.on("message:new", (message) => {
      const open = Boolean(state.current && message.chat_id === state.current.id);
      if (open) {
        addMessage(message);
        if (message.sender_id !== state.me.id) markRead();
        clearTyping(message.sender_id);
      }
      applyNewMessage(message, open);
    });
    socket.on("message:updated", (message) => { replaceMessage(message); applyChangedMessage(message); });
    socket.on("message:deleted", (event) => {
      const message = { ...findShown(event.id), ...event, deleted: true };
      replaceMessage(message);
      applyChangedMessage(message);
    });
    socket.on("message:liked", (event) => {
      const button = document.querySelector('[data-message-id="' + event.message_id + '"] .like-button');
      if (!button) return;
      button.dataset.likes = event.likes;
      if (event.user_id === state.me.id) button.dataset.liked = event.liked ? "1" : "";
      paintLike(button);
    });
    socket.on("read", (event) => {
      // I read a chat in another tab: its unread count is the server's to tell.
      if (event.user_id !== state.me.id || state.readSent.get(event.chat_id) === event.message_id) return;
      if (findChat(event.chat_id)) fetchChat(event.chat_id);
    });
    socket.on("typing", (event) => {
      if (!state.current || event.chat_id !== state.current.id || event.user_id === state.me.id) return;
      state.typingNames[event.user_id] = event.name;
      clearTimeout(state.typingTimers[event.user_id]);
      state.typingTimers[event.user_id] = setTimeout(() => clearTyping(event.user_id), 4000);
      paintTyping();
    });
    socket.on("presence", (event) => {
      document.querySelectorAll('.online-dot[data-user-id="' + event.user_id + '"]').forEach((dot) => {
        dot.classList.toggle("on", event.online);
        dot.title = event.online ? "online" : "offline";
      });
      for (const chat of state.chats) {
        for (const member of chat.members) if (member.id === event.user_id) member.online = event.online;
      }
      if (state.current) {
        for (const member of state.current.members) if (member.id === event.user_id) member.online = event.online;
        renderHeader();
      }
    });
    listenForReceipts(socket);
    socket.on("chat:new", upsertChat);
    socket.on("chat:updated", upsertChat);
    socket.on("chat:removed", (event) => removeChat(event.id));
    socket.on("connect", loadInvitations); // on start and after every reconnect
    socket.on("invitation:new", upsertInvitation);
    socket.on("chat:new", (chat) => dropInvitations((i) => i.chat_id !== chat.id));
  }

  window.addEventListener("online", () => {
    if (state.socket && !state.socket.connected) state.socket.connect();
  });

  function paintTyping() {
    const names = Object.keys(state.typingTimers).map((id) => state.typingNames[id]);
    $("typing").textContent = !names.length ? ""
      : names.length === 1 ? names[0] + " is typing…" : names.join(", ") + " are typing…";
  }

  function clearTyping(userId) {
    clearTimeout(state.typingTimers[userId]);
    delete state.typingTimers[userId];
    paintTyping();
  }

  function findShown(id) { return shown.get(id) || { id }; }

  function replaceMessage(message) {
    const old = document.querySelector('#message-items [data-message-id="' + message.id + '"]');
    if (!old) return;
    const merged = { ...findShown(message.id), ...message };
    if (!("liked_by_me" in message)) {
      merged.liked_by_me = Boolean(old.querySelector(".like-button") && old.querySelector(".like-button").dataset.liked);
    }
    shown.set(message.id, merged);
    old.replaceWith(renderMessage(merged));
  }

  // After a (re)connect: what arrived meanwhile in the open chat, following the cursor until
  // nothing is left, then the chat is marked read; the list once, for the other chats.
  let catchingUp = null;
  function catchUp() {
    catchingUp = catchingUp || followCursor().finally(() => { catchingUp = null; });
    return catchingUp;
  }

  async function followCursor() {
    const chat = state.current;
    try {
      if (chat) {
        let cursor = newestShownId();
        if (!cursor) {
          state.oldest = null;
          await loadOlder();
        } else {
          for (;;) {
            const page = await api("/chats/" + chat.id + "/messages?after=" + cursor + "&limit=" + CATCH_UP_PAGE);
            if (!state.current || state.current.id !== chat.id) break;
            page.items.forEach(addMessage);
            if (!page.items.length) break;
            cursor = page.next_cursor || page.items[page.items.length - 1].id;
            if (!page.next_cursor) break;
          }
        }
      }
      await loadChats();
      if (chat && state.current && state.current.id === chat.id) {
        scrollToBottom();
        markRead();
      }
    } catch (error) {
      if (!(error instanceof SessionEnded)) notice("Could not load the newest messages: " + error.message);
    }
  }

  // --- privacy settings and blocking -------------------------------------------------------------
  // Who finds me by my phone number and who may add me to groups (saved as soon as a select
  // changes), and the people I blocked: blocked or unblocked from our direct chat's header,
  // unblocked from the list in my profile.
  const blocking = { ids: new Set(), users: [] };

  async function loadBlocked() {
    try {
      blocking.users = await api("/users/me/blocked");
    } catch (error) {
      if (!(error instanceof SessionEnded)) notice("Could not load the people you blocked: " + error.message);
      return;
    }
    blocking.ids = new Set(blocking.users.map((user) => user.id));
    renderBlockButton();
    renderBlockedList();
  }

  function directPeer(chat) {
    if (!chat || chat.type !== "direct" || !state.me) return null;
    return chat.members.find((member) => member.id !== state.me.id) || null;
  }

  function renderBlockButton() {
    const peer = directPeer(state.current);
    const blocked = Boolean(peer && blocking.ids.has(peer.id));
    $("block-button").hidden = !peer;
    $("block-button").textContent = blocked ? "Unblock" : "Block";
    $("block-note").hidden = !blocked;
    $("block-note").textContent = blocked
      ? "You blocked " + peer.name + ". Neither of you can write here until you unblock them." : "";
  }

  async function setBlocked(user, blocked) {
    await api("/users/" + user.id + "/block", { method: blocked ? "PUT" : "DELETE" });
    await loadBlocked();
  }

  $("block-button").addEventListener("click", async () => {
    const peer = directPeer(state.current);
    if (!peer) return;
    const block = !blocking.ids.has(peer.id);
    if (block && !window.confirm("Block " + peer.name + "? Neither of you will be able to write in this chat, and they will not see when you are online.")) return;
    try {
      await setBlocked(peer, block);
    } catch (error) { notice(error.message); }
  });

  function renderBlockedList() {
    const list = $("blocked-list");
    list.replaceChildren();
    if (!blocking.users.length) {
      const empty = document.createElement("li");
      empty.className = "list-group-item px-0 text-body-secondary";
      empty.textContent = "Nobody.";
      list.append(empty);
    }
    for (const user of blocking.users) {
      const item = document.createElement("li");
      item.className = "list-group-item d-flex align-items-center gap-2 px-0";
      item.dataset.userId = user.id;
      const name = document.createElement("span");
      name.className = "me-auto text-truncate";
      name.textContent = user.name + (user.username ? " @" + user.username : "");
      const unblock = document.createElement("button");
      unblock.type = "button";
      unblock.className = "btn btn-sm btn-outline-secondary";
      unblock.textContent = "Unblock";
      unblock.dataset.testid = "unblock-user";
      unblock.addEventListener("click", async () => {
        profileError("");
        try { await setBlocked(user, false); } catch (error) { profileError(error.message); }
      });
      item.append(name, unblock);
      list.append(item);
    }
  }

  function privacyStatus(text) {
    $("privacy-status").textContent = text;
  }

  function renderPrivacy() {
    document.querySelectorAll("[data-privacy]").forEach((select) => {
      select.value = state.me[select.dataset.privacy];
    });
  }

  document.querySelectorAll("[data-privacy]").forEach((select) => {
    select.addEventListener("change", async () => {
      const field = select.dataset.privacy;
      profileError("");
      privacyStatus("saving…");
      try {
        state.me = await api("/users/me", { method: "PATCH", body: { [field]: select.value } });
        privacyStatus("saved");
      } catch (error) {
        privacyStatus("");
        profileError("The setting was not saved: " + error.message);
      }
      renderPrivacy();
    });
  });

  $("profile-modal").addEventListener("show.bs.modal", () => {
    privacyStatus("");
    renderPrivacy();
    renderBlockedList();
    loadBlocked();
  });

  // --- start ------------------------------------------------------------------------------------
  let starting = false;
  async function start() {
    if (starting) return;
    starting = true;
    try {
      state.me = await api("/users/me");
    } catch (error) {
      if ($("auth-view").hidden) {
        showAuth(error instanceof SessionEnded ? "" : "The messenger cannot be reached: " + error.message);
      }
      return;
    } finally {
      starting = false;
    }
    renderMe();
    loadBlocked();
    $("auth-view").hidden = true;
    $("auth-notice").hidden = true;
    $("app-view").hidden = false;
    closeChat();
    try {
      await loadChats();
    } catch (error) {
      if (error instanceof SessionEnded) return;
      notice("Could not load your chats: " + error.message);
    }
    connectSocket();
  }

  if (state.access) start(); else showAuth();
})();
