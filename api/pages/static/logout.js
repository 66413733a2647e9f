// After logging out: drop the pages the service worker kept, in browsers that ignore Clear-Site-Data.
if ("caches" in window) {
  caches.keys().then(function (keys) { keys.forEach(function (k) { caches.delete(k); }); });
}
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.getRegistrations().then(function (rs) { rs.forEach(function (r) { r.unregister(); }); });
}
