// The pending list updates itself: every few seconds it fetches its table
// body, rendered and escaped on the server, and swaps it in. Nothing else
// on the review page needs a script.
"use strict";
(function () {
  var body = document.body;
  if (body.dataset.page !== "pending") return;
  var every = (parseInt(body.dataset.refresh, 10) || 5) * 1000;
  var rows = document.getElementById("pending-rows");
  var updated = document.getElementById("updated");
  function refresh() {
    fetch("/review/pending-rows", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { window.location = "/review/login"; return null; }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        rows.innerHTML = html;
        updated.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
      })
      .catch(function (e) { updated.textContent = "could not update (" + e.message + "); retrying"; })
      .finally(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
