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

  document.getElementById("audio-user-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const out = document.getElementById("audio-user-result");
    const name = document.getElementById("audio-name").value;
    const response = await fetch("/api/v1/audio/users", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: name }),
    });
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
    show(out, "secondary", ["Converting…"]);
    const response = await fetch("/api/v1/audio/records", {
      method: "POST",
      body: new FormData(event.target),
    });
    if (!response.ok) {
      show(out, "danger", [await problem(response)]);
      return;
    }
    const record = await response.json();
    show(out, "success", ["Record " + record.id, { label: "Download: ", href: record.url }]);
  });
})();
