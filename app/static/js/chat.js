// The messenger page: the REST API for everything stored, Socket.IO for what happens live.
// Tokens live in localStorage; every text is put into the page with textContent (no HTML
// from the server or other users is ever interpreted).
(function () {
  "use strict";
  const API = "/api/v1";
  const PAGE = 30;
  const $ = (id) => document.getElementById(id);
  const state = {
    access: localStorage.getItem("quintet.access"),
    refresh: localStorage.getItem("quintet.refresh"),
    me: null,
    chats: [],
    current: null,
    oldest: null,
    socket: null,
    typingTimers: {},
    lastTypingSent: 0,
    groupMembers: new Map(),
  };
  const shown = new Map(); // message id -> the last representation rendered

  // --- API ------------------------------------------------------------------------------
  function saveTokens(body) {
    state.access = body.access_token;
    state.refresh = body.refresh_token;
    localStorage.setItem("quintet.access", state.access);
    localStorage.setItem("quintet.refresh", state.refresh);
  }

  function clearTokens() {
    state.access = state.refresh = null;
    localStorage.removeItem("quintet.access");
    localStorage.removeItem("quintet.refresh");
  }

  let refreshing = null;
  async function refreshTokens() {
    if (!state.refresh) return false;
    refreshing = refreshing || fetch(API + "/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: state.refresh }),
    }).then(async (response) => {
      if (!response.ok) { clearTokens(); return false; }
      saveTokens(await response.json());
      return true;
    }).finally(() => { refreshing = null; });
    return refreshing;
  }

  async function api(path, { method = "GET", body, raw = false, retry = true } = {}) {
    const headers = {};
    if (state.access) headers.Authorization = "Bearer " + state.access;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && retry && (await refreshTokens())) {
      return api(path, { method, body, raw, retry: false });
    }
    if (response.status === 401) { showAuth(); throw new Error("Please log in again."); }
    if (raw) return response;
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.detail) || response.statusText);
    return data;
  }

  // --- sign-in ----------------------------------------------------------------------------
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
    const response = await fetch(API + "/auth/" + authMode, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("auth-error").textContent = data.detail || "Something went wrong.";
      $("auth-error").hidden = false;
      return;
    }
    saveTokens(data);
    start();
  });

  $("logout-button").addEventListener("click", async () => {
    if (state.refresh) {
      await fetch(API + "/auth/logout", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: state.refresh }),
      });
    }
    clearTokens();
    if (state.socket) state.socket.disconnect();
    showAuth();
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

  function showAuth() {
    $("app-view").hidden = true;
    $("auth-view").hidden = false;
  }

  // --- chats ------------------------------------------------------------------------------
  async function loadChats() {
    state.chats = await api("/chats");
    renderChats();
  }

  function renderChats() {
    const list = $("chat-list");
    list.replaceChildren();
    for (const chat of state.chats) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "list-group-item list-group-item-action d-flex gap-2 align-items-start";
      item.dataset.chatId = chat.id;
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
        title.append(dot);
      }
      title.append((chat.pinned ? "📌 " : "") + chat.title);
      const last = document.createElement("div");
      last.className = "small text-body-secondary text-truncate";
      last.textContent = chat.last_message ? summary(chat.last_message) : "No messages yet";
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

  async function openChat(chatId) {
    state.current = await api("/chats/" + chatId);
    state.oldest = null;
    $("message-items").replaceChildren();
    $("composer").hidden = false;
    $("pin-button").hidden = $("mute-button").hidden = false;
    renderHeader();
    renderChats();
    await loadOlder();
    scrollToBottom();
    markRead();
  }

  function renderHeader() {
    const chat = state.current;
    $("chat-title").textContent = chat.title;
    const online = chat.members.filter((m) => m.online && m.id !== state.me.id).length;
    $("chat-subtitle").textContent = chat.type === "group"
      ? chat.members.length + " members, " + online + " online"
      : (online ? "online" : "offline");
    $("pin-button").textContent = chat.pinned ? "Unpin" : "Pin";
    $("mute-button").textContent = chat.muted ? "Unmute" : "Mute";
  }

  async function loadOlder() {
    const chat = state.current;
    const query = "?limit=" + PAGE + (state.oldest ? "&before=" + state.oldest : "");
    const page = await api("/chats/" + chat.id + "/messages" + query);
    if (!state.current || state.current.id !== chat.id) return;
    const container = $("messages");
    const previousHeight = container.scrollHeight;
    for (const message of page.items) {
      $("message-items").prepend(renderMessage(message));
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
    meta.className = "small text-body-secondary";
    meta.textContent = (mine ? "You" : senderName(message)) + " · " +
      new Date(message.created_at).toLocaleTimeString() + (message.edited_at ? " · edited" : "");
    bubble.append(meta);
    if (message.deleted) {
      const gone = document.createElement("div");
      gone.className = "fst-italic text-body-secondary";
      gone.textContent = "Message deleted";
      bubble.append(gone);
      row.append(bubble);
      return row;
    }
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
      const result = await api("/messages/" + message.id + "/like", { method: liked ? "PUT" : "DELETE" });
      like.dataset.liked = result.liked_by_me ? "1" : "";
      like.dataset.likes = result.likes;
      paintLike(like);
    });
    bubble.append(like);
    row.append(bubble);
    return row;
  }

  function paintLike(button) {
    button.textContent = (button.dataset.liked ? "♥ " : "♡ ") + button.dataset.likes;
  }

  function renderAttachment(attachment) {
    if (attachment.kind === "image") {
      const img = document.createElement("img");
      img.className = "attachment mb-1";
      img.alt = attachment.name;
      // Attachments need the bearer token, which an <img src> cannot send.
      api(attachment.preview_url.replace(API, ""), { raw: true })
        .then((response) => response.blob())
        .then((blob) => { img.src = URL.createObjectURL(blob); });
      return img;
    }
    const link = document.createElement("button");
    link.type = "button";
    link.className = "btn btn-sm btn-outline-secondary mb-1";
    link.textContent = "📎 " + attachment.name + " (" + Math.ceil(attachment.size / 1024) + " KB)";
    link.addEventListener("click", async () => {
      const blob = await (await api(attachment.url.replace(API, ""), { raw: true })).blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = attachment.name;
      a.click();
    });
    return link;
  }

  function scrollToBottom() {
    $("messages").scrollTop = $("messages").scrollHeight;
  }

  function markRead() {
    if (state.current && state.socket && state.socket.connected) {
      state.socket.emit("read", { chat_id: state.current.id }, () => loadChats());
    }
  }

  $("pin-button").addEventListener("click", async () => {
    state.current = await api("/chats/" + state.current.id + "/pin", { method: state.current.pinned ? "DELETE" : "PUT" });
    renderHeader();
    loadChats();
  });

  $("mute-button").addEventListener("click", async () => {
    state.current = await api("/chats/" + state.current.id + "/mute", { method: state.current.muted ? "DELETE" : "PUT" });
    renderHeader();
  });

  // --- sending ------------------------------------------------------------------------------
  function send(payload) {
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
    const text = $("message-input").value.trim();
    if (!text || !state.current) return;
    $("message-input").value = "";
    state.lastTypingSent = 0; // sending ends this burst of typing; the next keystroke starts one
    try {
      addMessage(await send({ chat_id: state.current.id, type: "text", text }));
    } catch (error) {
      notice(error.message);
      $("message-input").value = text;
    }
  });

  $("message-input").addEventListener("input", () => {
    const now = Date.now();
    if (state.current && state.socket && now - state.lastTypingSent > 2500) {
      state.lastTypingSent = now;
      state.socket.emit("typing", { chat_id: state.current.id });
    }
  });

  $("image-input").addEventListener("change", () => {
    const file = $("image-input").files[0];
    if (!file || !state.current) return;
    const reader = new FileReader();
    reader.onload = async () => {
      try {
        addMessage(await send({
          chat_id: state.current.id, type: "image", attachment: { data: reader.result, name: file.name },
        }));
      } catch (error) {
        notice(error.message);
      }
      $("image-input").value = "";
    };
    reader.readAsDataURL(file);
  });

  function addMessage(message) {
    if (!state.current || message.chat_id !== state.current.id) return;
    if (document.querySelector('[data-message-id="' + message.id + '"]')) return;
    $("message-items").append(renderMessage(message));
    scrollToBottom();
  }

  // --- people and groups ----------------------------------------------------------------------
  async function searchPeople(query, onPick, target) {
    target.replaceChildren();
    if (!query.trim()) return;
    const people = await api("/users?search=" + encodeURIComponent(query));
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
      const chat = await api("/chats", { method: "POST", body: { type: "direct", member_id: person.id } });
      $("people-results").replaceChildren();
      $("people-search").value = "";
      await loadChats();
      openChat(chat.id);
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
    const chat = await api("/chats", {
      method: "POST",
      body: { type: "group", title: $("group-title").value, member_ids: [...state.groupMembers.keys()] },
    });
    state.groupMembers.clear();
    $("group-members").textContent = "only you";
    $("group-results").replaceChildren();
    $("group-form").reset();
    window.bootstrap.Modal.getOrCreateInstance($("group-modal")).hide();
    await loadChats();
    openChat(chat.id);
  });

  // --- live events ------------------------------------------------------------------------------
  function connectSocket() {
    if (state.socket) state.socket.disconnect();
    // WebSocket only: no long-polling session to pin to one replica behind a load balancer.
    const socket = io({ transports: ["websocket"], auth: (cb) => cb({ token: state.access }) });
    state.socket = socket;
    socket.on("connect", () => {
      $("socket-status").textContent = "live";
      $("socket-status").className = "badge text-bg-success";
      catchUp();
    });
    socket.on("disconnect", async (reason) => {
      $("socket-status").textContent = "offline";
      $("socket-status").className = "badge text-bg-secondary";
      // The server closes a connection when its access token expires ("session:expired"):
      // refresh the token and connect again; other drops reconnect by themselves.
      if (reason === "io server disconnect" && socket === state.socket && (await refreshTokens())) socket.connect();
    });
    socket.on("connect_error", async (error) => {
      // An expired access token: refresh it and let the client reconnect with the new one.
      if (/expired|not valid|required/i.test(error.message) && (await refreshTokens())) socket.connect();
    });
    socket.on("message:new", (message) => {
      if (state.current && message.chat_id === state.current.id) {
        addMessage(message);
        if (message.sender_id !== state.me.id) markRead();
        clearTyping(message.sender_id);
      }
      loadChats();
    });
    socket.on("message:updated", (message) => replaceMessage(message));
    socket.on("message:deleted", (event) => replaceMessage({ ...findShown(event.id), deleted: true }));
    socket.on("message:liked", (event) => {
      const button = document.querySelector('[data-message-id="' + event.message_id + '"] .like-button');
      if (!button) return;
      button.dataset.likes = event.likes;
      if (event.user_id === state.me.id) button.dataset.liked = event.liked ? "1" : "";
      paintLike(button);
    });
    socket.on("typing", (event) => {
      if (!state.current || event.chat_id !== state.current.id) return;
      $("typing").textContent = event.name + " is typing…";
      clearTimeout(state.typingTimers[event.user_id]);
      state.typingTimers[event.user_id] = setTimeout(() => clearTyping(event.user_id), 4000);
    });
    socket.on("presence", (event) => {
      document.querySelectorAll('.online-dot[data-user-id="' + event.user_id + '"]').forEach((dot) => dot.classList.toggle("on", event.online));
      for (const chat of state.chats) {
        for (const member of chat.members) if (member.id === event.user_id) member.online = event.online;
      }
      if (state.current) {
        for (const member of state.current.members) if (member.id === event.user_id) member.online = event.online;
        renderHeader();
      }
    });
    for (const name of ["chat:new", "chat:updated"]) {
      socket.on(name, (chat) => {
        if (state.current && chat.id === state.current.id) { state.current = chat; renderHeader(); }
        loadChats();
      });
    }
    socket.on("chat:removed", (event) => {
      if (state.current && state.current.id === event.id) {
        state.current = null;
        $("message-items").replaceChildren();
        $("composer").hidden = true;
        $("chat-title").textContent = "Pick a chat";
      }
      loadChats();
    });
  }

  function clearTyping(userId) {
    clearTimeout(state.typingTimers[userId]);
    delete state.typingTimers[userId];
    if (!Object.keys(state.typingTimers).length) $("typing").textContent = "";
  }

  function findShown(id) { return shown.get(id) || { id }; }

  function replaceMessage(message) {
    const old = document.querySelector('[data-message-id="' + message.id + '"]');
    if (!old) return;
    const merged = { ...findShown(message.id), ...message };
    if (!("liked_by_me" in message)) {
      merged.liked_by_me = Boolean(old.querySelector(".like-button") && old.querySelector(".like-button").dataset.liked);
    }
    shown.set(message.id, merged);
    old.replaceWith(renderMessage(merged));
  }

  // After a reconnect, fetch what arrived meanwhile in the open chat.
  async function catchUp() {
    if (!state.current) return;
    const items = [...document.querySelectorAll("#message-items [data-message-id]")];
    const newest = items.length ? items[items.length - 1].dataset.messageId : null;
    if (!newest) return;
    const page = await api("/chats/" + state.current.id + "/messages?after=" + newest + "&limit=100");
    page.items.forEach(addMessage);
    loadChats();
  }

  // --- start ------------------------------------------------------------------------------------
  async function start() {
    try {
      state.me = await api("/users/me");
    } catch (error) {
      showAuth();
      return;
    }
    $("me-name").textContent = state.me.name + " · " + state.me.phone;
    $("auth-view").hidden = true;
    $("app-view").hidden = false;
    await loadChats();
    connectSocket();
  }

  if (state.access) start(); else showAuth();
})();
