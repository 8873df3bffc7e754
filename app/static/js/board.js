// Counts each message's remaining lifetime down and removes it from the page when it
// expires, as Redis removes it from the store. Times are shown in the visitor's zone.
(function () {
  const list = document.getElementById("messages");
  if (!list) return;
  const serverOffset = 0;
  document.querySelectorAll("time.created-at").forEach((el) => {
    const when = new Date(parseFloat(el.dataset.epoch) * 1000);
    el.textContent = when.toLocaleString();
    el.setAttribute("datetime", when.toISOString());
  });
  function tick() {
    const now = Date.now() / 1000 + serverOffset;
    list.querySelectorAll("li.message").forEach((item) => {
      const left = Math.round(parseFloat(item.dataset.expiresAt) - now);
      if (left <= 0) {
        item.remove();
      } else {
        item.querySelector(".ttl").textContent = left;
      }
    });
    const count = list.querySelectorAll("li.message").length;
    document.getElementById("message-count").textContent = count;
    document.getElementById("empty-note").classList.toggle("d-none", count > 0);
  }
  setInterval(tick, 1000);
})();
