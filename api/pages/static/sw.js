// Shouwang phone page service worker: pages are cached as they load (network first, with a time limit for
// weak connections); when the network fails the cached copy is shown, marked as offline.
const CACHE = "shouwang-pages-v1";
const STATIC = ["/static/style.css", "/static/app.js", "/static/icon.svg", "/static/icon-192.png",
                "/static/offline.html"];
const NETWORK_WAIT_MS = 6000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(STATIC)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then((r) => { clearTimeout(timer); resolve(r); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

async function markOffline(response) {
  const text = await response.text();
  const headers = new Headers(response.headers);
  headers.set("X-Shouwang-Offline", "1");
  return new Response(text.replace('data-offline="0"', 'data-offline="1"'),
                      { status: 200, headers: headers });
}

async function page(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await withTimeout(fetch(request), NETWORK_WAIT_MS);
    if (response.ok && !response.redirected && response.type === "basic") {
      await cache.put(request, response.clone());
    }
    return response;
  } catch (err) {
    const cached = await cache.match(request, { ignoreVary: true });
    if (cached) return markOffline(cached);
    return (await cache.match("/static/offline.html")) || Response.error();
  }
}

async function asset(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function send(request) {
  try {
    return await fetch(request);
  } catch (err) {
    const offline = await caches.match("/static/offline.html");
    return offline || Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return;
  if (event.request.method !== "GET") {
    event.respondWith(send(event.request));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(asset(event.request));
  } else if (url.pathname === "/m" || url.pathname.startsWith("/m/")) {
    event.respondWith(page(event.request));
  }
});
