// Counts each message's remaining lifetime down and removes it from the page when it
// expires, as Redis removes it from the store. Times are shown in the visitor's zone.
// The count follows the server's clock, not the visitor's: the page carries the server's
// time when it was made, and the difference to this clock is applied to every tick.
// The page shows one page of the list; the badge counts every page: each expiry seen here
// takes one off the total the server rendered (all messages live the same TTL and the
// newest come first, so later pages empty before this one does).
(function () {
  const list = document.getElementById("messages");
  if (!list) return;
  const serverNow = parseFloat(list.dataset.serverNow);
  const serverOffset = Number.isFinite(serverNow) ? serverNow - Date.now() / 1000 : 0;
  const badge = document.getElementById("message-count");
  const pageSize = parseInt(list.dataset.pageSize, 10) || 1;
  let total = parseInt(badge.dataset.total, 10) || 0;
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
        total = Math.max(0, total - 1);
      } else {
        item.querySelector(".ttl").textContent = left;
      }
    });
    const shown = list.querySelectorAll("li.message").length;
    badge.textContent = total;
    document.getElementById("empty-note").classList.toggle("d-none", total > 0);
    const pageEmpty = document.getElementById("page-empty-note");
    pageEmpty.classList.toggle("d-none", shown > 0 || total === 0);
    if (shown === 0 && total > 0) {
      const last = Math.max(1, Math.ceil(total / pageSize));
      const link = document.getElementById("last-page-link");
      link.href = last === 1 ? "/board/messages" : "/board/messages?page=" + last;
      link.textContent = "Go to page " + last;
    }
  }
  setInterval(tick, 1000);
})();
