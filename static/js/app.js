// Small behaviours htmx does not cover. A file, not inline script: the CSP allows no inline code.
(function () {
  "use strict";

  // Forms that ask first: <form data-confirm="Delete this?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  function thread() { return document.getElementById("thread"); }
  function busy() { return !!document.querySelector("#thread .msg.streaming"); }

  // Send is off while an answer (or the load before it) is being written.
  function syncComposer() {
    var send = document.getElementById("send");
    if (send) { send.disabled = busy(); }
  }

  function scrollToEnd() {
    var t = thread();
    if (t) { t.scrollTop = t.scrollHeight; }
  }

  document.addEventListener("keydown", function (event) {
    var prompt = event.target;
    if (prompt.id !== "prompt" || event.key !== "Enter" || event.shiftKey || event.isComposing) { return; }
    event.preventDefault();
    if (!busy() && prompt.value.trim()) { prompt.form.requestSubmit(); }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    var config = event.detail.requestConfig || {};
    // Only the composer's own POST: htmx reports the model picker's polling (inside the form) with the
    // form as its element too, and clearing then would wipe what the user is typing.
    if (form.id === "composer" && config.verb === "post" && event.detail.successful) {
      form.querySelector("#prompt").value = "";
      var error = document.getElementById("composer-error");
      if (error) { error.textContent = ""; }
    }
  });

  // The thread changes under htmx swaps (some fire their events on nodes already removed), so the
  // composer is re-synced on every change and, as a backstop, a few times a second.
  document.addEventListener("DOMContentLoaded", function () {
    var t = thread();
    syncComposer();
    scrollToEnd();
    if (t) {
      new MutationObserver(function () { syncComposer(); scrollToEnd(); })
        .observe(t, { childList: true, subtree: true, characterData: true });
      window.setInterval(syncComposer, 300);
    }
  });
})();
