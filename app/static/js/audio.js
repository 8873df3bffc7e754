// The /audio page: plain fetch() calls to the JSON API, results written as text (no HTML injection).
(function () {
  "use strict";

  function show(target, kind, lines) {
    target.replaceChildren();
    const box = document.createElement("div");
    box.className = "alert alert-" + kind;
    lines.forEach(function (line) {
      const row = document.createElement("div");
      if (line.href) {
        const link = document.createElement("a");
        link.href = line.href;
        link.textContent = line.href;
        row.append(line.label || "", link);
      } else {
        row.textContent = line;
      }
      box.append(row);
    });
    target.append(box);
  }

  async function problem(response) {
    try {
      const body = await response.json();
      return response.status + " " + (body.title || "") + ": " + (body.detail || "");
    } catch (error) {
      return response.status + " " + response.statusText;
    }
  }

  // fetch() rejects when the request never got an answer (network down, server gone, the
  // connection cut mid-upload): say so instead of leaving the last status on the page.
  async function send(out, url, options, what) {
    try {
      return await fetch(url, options);
    } catch (error) {
      show(out, "danger", [
        what + " failed: the server could not be reached (" + (error.message || "network error") + ").",
        "Check your connection and try again; nothing was changed on the server unless it says so later.",
      ]);
      return null;
    }
  }

  document.getElementById("audio-user-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const out = document.getElementById("audio-user-result");
    const name = document.getElementById("audio-name").value;
    const response = await send(out, "/api/v1/audio/users", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: name }),
    }, "Creating the user");
    if (response === null) {
      return;
    }
    if (!response.ok) {
      show(out, "danger", [await problem(response)]);
      return;
    }
    const user = await response.json();
    document.getElementById("audio-user-id").value = user.id;
    document.getElementById("audio-token").value = user.token;
    show(out, "success", ["id: " + user.id, "token: " + user.token, "The token is shown only once."]);
  });

  document.getElementById("audio-upload-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const out = document.getElementById("audio-upload-result");
    const button = event.target.querySelector("button[type=submit]");
    show(out, "secondary", ["Converting…"]);
    button.disabled = true;
    const response = await send(out, "/api/v1/audio/records", {
      method: "POST",
      body: new FormData(event.target),
    }, "The upload");
    button.disabled = false;
    if (response === null) {
      return;
    }
    if (!response.ok) {
      show(out, "danger", [await problem(response)]);
      return;
    }
    let record;
    try {
      record = await response.json();
    } catch (error) {
      show(out, "danger", ["The answer was cut off before it arrived (" + error.message + "); try again."]);
      return;
    }
    show(out, "success", ["Record " + record.id, { label: "Download: ", href: record.url }]);
  });
})();
