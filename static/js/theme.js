// Runs before the page paints (not deferred), so a chosen theme does not flash the other one first.
// Without a choice the CSS follows prefers-color-scheme.
(function () {
  "use strict";
  try {
    var theme = window.localStorage.getItem("theme");
    if (theme === "dark" || theme === "light") { document.documentElement.dataset.theme = theme; }
  } catch (e) { /* storage refused (private mode): follow the system */ }
})();
