// Re-fetch the server-rendered panels every few seconds; rendering itself stays on the server.
(function () {
  "use strict";
  var panels = document.getElementById("panels");
  var updated = document.getElementById("updated");
  var seconds = Number(panels.dataset.pollSeconds) || 3;
  var source = panels.dataset.source || "/dashboard/panels";
  var refreshes = 0;

  function refresh() {
    fetch(source, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        panels.innerHTML = html;
        refreshes += 1;
        panels.dataset.refreshes = String(refreshes);
        updated.textContent = "updated " + new Date().toLocaleTimeString();
        updated.dataset.stale = "false";
      })
      .catch(function (error) {
        updated.textContent = "not updated: " + error.message;
        updated.dataset.stale = "true";
      })
      .finally(function () { window.setTimeout(refresh, seconds * 1000); });
  }
  window.setTimeout(refresh, seconds * 1000);
})();
