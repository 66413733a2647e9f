// The phone page: register the service worker that keeps loaded pages readable on a weak connection.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/m" }).catch(function (e) {
    console.warn("service worker not registered", e);
  });
}
// A button pressed once stays pressed: no double "on my way" on a slow connection.
document.addEventListener("submit", function (ev) {
  var b = ev.target.querySelector("button[type=submit]");
  if (b) { setTimeout(function () { b.disabled = true; }, 0); }
});
