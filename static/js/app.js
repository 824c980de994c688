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
  function streaming() { return document.querySelector("#thread .msg.streaming"); }

  // While an answer (or the load before it) is being written, Send is Stop.
  function syncComposer() {
    var send = document.getElementById("send");
    if (!send) { return; }
    var busy = !!streaming();
    if (send.classList.contains("stop") !== busy) {
      send.classList.toggle("stop", busy);
      send.textContent = busy ? "Stop" : "Send";
      send.title = busy ? "Stop the answer (Esc); what was written is kept" : "";
    }
  }

  function stop() {
    var answer = streaming();
    if (!answer || answer.dataset.stopping) { return; }
    answer.dataset.stopping = "1";
    // The article sits under <body hx-headers>, so the request carries the CSRF token.
    window.htmx.ajax("POST", answer.dataset.stopUrl, { source: answer, swap: "none" });
  }

  // A press on Stop must neither send the prompt nor be blocked by the empty, required prompt's
  // validation (which would swallow the submit event): handled at the click, before any of that.
  document.addEventListener("click", function (event) {
    if (event.target.closest("#send") && streaming()) {
      event.preventDefault();
      event.stopPropagation();
      stop();
    }
  }, true);
  document.addEventListener("submit", function (event) {
    if (event.target.id === "composer" && streaming()) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  var followEnd = true;
  function scrollToEnd() {
    if (!followEnd) { return; }
    var t = thread();
    if (!t || !t.lastElementChild) { return; }
    t.scrollTop = t.scrollHeight;  // desktop: the thread scrolls
    // Phone: the page scrolls, and the composer is the last thing on it.
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      if (streaming()) { event.preventDefault(); stop(); return; }
      closeDrawer();
      return;
    }
    var prompt = event.target;
    if (prompt.id !== "prompt" || event.key !== "Enter" || event.shiftKey || event.isComposing) { return; }
    event.preventDefault();
    if (!streaming() && prompt.value.trim()) { prompt.form.requestSubmit(); }
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
      followEnd = true;
    }
  });

  // --- the answer as it is written -------------------------------------------------------------------
  // The server sends the text as plain text, a few pieces a second. Each piece is added to a text node:
  // never parsed as HTML, and no htmx swap (with its parsing and settling) per piece. The rendered
  // Markdown replaces it all once, when the answer is done. The nodes sit in blocks of about BLOCK_CHARS,
  // each ending at a line break (so the text shows as in one), and the browser lays out only the last
  // block again as it grows, not the whole answer.
  var BLOCK_CHARS = 2048;
  function newBlock(live) {
    var block = live.appendChild(document.createElement("div"));
    return block.appendChild(document.createTextNode(""));
  }
  function appendText(live, text) {
    var block = live.lastElementChild;
    var node = block ? block.firstChild : newBlock(live);
    if (node.length >= BLOCK_CHARS) {
      var cut = text.indexOf("\n") + 1;
      if (cut > 0) {
        node.appendData(text.slice(0, cut));
        text = text.slice(cut);
        node = newBlock(live);
      }
    }
    node.appendData(text);
  }
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var source = event.target;
    if (!source.dataset || !source.dataset.appendText) { return; }
    event.preventDefault();
    var live = document.querySelector(source.dataset.appendText);
    if (live) { appendText(live, event.detail.data); }
  });

  // --- copy -------------------------------------------------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return copyByCommand(text); });
    }
    return copyByCommand(text);
  }

  // For pages served over plain HTTP on another host, where the clipboard API is not offered.
  function copyByCommand(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function flashLabel(button, label) {
    button.textContent = label;
    window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }

  function addCodeCopyButtons(root) {
    root.querySelectorAll(".markdown pre").forEach(function (pre) {
      if (pre.parentElement.classList.contains("code-block")) { return; }
      var wrap = document.createElement("div");
      wrap.className = "code-block";
      pre.parentNode.insertBefore(wrap, pre);
      wrap.appendChild(pre);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link copy copy-code";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy code");
      wrap.insertBefore(button, pre);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    var text;
    if (button.classList.contains("copy-code")) {
      text = button.parentElement.querySelector("pre").textContent;
    } else {
      var source = button.closest(".msg").querySelector("template.source");
      text = source ? source.content.textContent : "";
    }
    copyText(text).then(function () { flashLabel(button, "Copied"); }, function () { flashLabel(button, "Copy failed"); });
  });

  // --- edit a question --------------------------------------------------------------------------------
  function toggleEdit(message, open) {
    var form = message.querySelector(".edit-form");
    if (!form) { return; }
    form.hidden = !open;
    message.querySelector(".body").hidden = open;
    message.classList.toggle("editing", open);
    if (open) {
      var area = form.querySelector("textarea");
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
    }
  }

  document.addEventListener("click", function (event) {
    var open = event.target.closest(".edit-open");
    if (open) { toggleEdit(open.closest(".msg"), true); return; }
    var cancel = event.target.closest(".edit-cancel");
    if (cancel) { toggleEdit(cancel.closest(".msg"), false); }
  });

  document.addEventListener("keydown", function (event) {
    var area = event.target;
    if (!area.closest || !area.closest(".edit-form")) { return; }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (area.value.trim() && !streaming()) { area.form.requestSubmit(); }
    } else if (event.key === "Escape") {
      event.stopPropagation();
      toggleEdit(area.closest(".msg"), false);
    }
  }, true);

  // --- versions: after ‹ or › redraws the thread, the keyboard focus returns to the same arrow -------
  var refocus = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var button = event.detail.elt;
    if (!button.closest || !button.closest(".versions")) { return; }
    var messages = Array.prototype.slice.call(document.querySelectorAll("#thread .msg"));
    refocus = { index: messages.indexOf(button.closest(".msg")), next: button.classList.contains("version-next") };
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) { return; }
    var message = document.querySelectorAll("#thread .msg")[refocus.index];
    var wanted = refocus.next ? ".version-next" : ".version-prev";
    var other = refocus.next ? ".version-prev" : ".version-next";
    refocus = null;
    // Only when the focus went down with the old arrow: never take it from where the user has moved on.
    var active = document.activeElement;
    if (!message || (active && active !== document.body && document.contains(active))) { return; }
    var button = message.querySelector(wanted + ":not(:disabled)") || message.querySelector(other);
    if (button) { followEnd = false; button.focus(); }
  });

  // --- the conversation list as a drawer on a phone ---------------------------------------------------
  function setDrawer(open) {
    var sidebar = document.getElementById("sidebar");
    if (!sidebar) { return; }
    sidebar.classList.toggle("open", open);
    document.querySelectorAll(".drawer-open").forEach(function (b) { b.setAttribute("aria-expanded", String(open)); });
    var backdrop = document.querySelector(".drawer-backdrop");
    if (backdrop) { backdrop.hidden = !open; }
    if (open) {
      var search = document.getElementById("chat-search");
      if (search) { search.focus({ preventScroll: true }); }
    }
  }
  function closeDrawer() {
    var sidebar = document.getElementById("sidebar");
    if (sidebar && sidebar.classList.contains("open")) { setDrawer(false); }
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest(".drawer-open")) { setDrawer(true); return; }
    if (event.target.closest(".drawer-close") || event.target.classList.contains("drawer-backdrop")) { setDrawer(false); }
  });

  // --- theme ------------------------------------------------------------------------------------------
  function currentTheme() {
    var chosen = document.documentElement.dataset.theme;
    if (chosen) { return chosen; }
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function syncThemeButton() {
    var button = document.getElementById("theme-toggle");
    if (!button) { return; }
    var dark = currentTheme() === "dark";
    button.textContent = dark ? "☀ Light" : "☾ Dark";
    button.setAttribute("aria-pressed", String(dark));  // its name stays "Dark theme"; pressed = on
    button.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest("#theme-toggle")) { return; }
    var next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { window.localStorage.setItem("theme", next); } catch (e) { /* kept for this page only */ }
    syncThemeButton();
  });

  // A new title (from the model, after the first answer, swapped in by the stream) shows in the sidebar
  // and the tab too. Observed rather than an htmx event: the SSE extension's swaps do not all announce.
  function followTitle() {
    var title = document.getElementById("chat-title");
    if (!title) { return; }
    new MutationObserver(function () {
      var text = title.textContent.trim();
      var current = document.querySelector(".conversation.current");
      if (current && text) { current.textContent = text; }
      if (text) { document.title = text + " · AI Orchestrator"; }
    }).observe(title, { childList: true, characterData: true, subtree: true });
  }

  // The thread changes under htmx swaps (some fire their events on nodes already removed), so the
  // composer is re-synced on every change and, as a backstop, a few times a second.
  document.addEventListener("DOMContentLoaded", function () {
    var t = thread();
    syncThemeButton();
    syncComposer();
    followTitle();
    if (t) {
      addCodeCopyButtons(t);
      var target = window.location.hash ? document.getElementById(window.location.hash.slice(1)) : null;
      if (target && t.contains(target)) {
        followEnd = false;  // a search hit: show that message, not the end
        target.classList.add("highlight");
        target.scrollIntoView({ block: "center" });
      } else {
        scrollToEnd();
      }
      // At most once a frame: scrolling to the end reads the thread's height, which lays the page out,
      // and doing that for every piece of a growing answer costs time in proportion to its length.
      var queued = false;
      new MutationObserver(function () {
        if (queued) { return; }
        queued = true;
        window.requestAnimationFrame(function () {
          queued = false;
          addCodeCopyButtons(t); syncComposer(); scrollToEnd();
        });
      }).observe(t, { childList: true, subtree: true, characterData: true });
      window.setInterval(syncComposer, 300);
    }
  });
})();
