// The app's service worker: every file of the app is cached when it installs, and answered
// from the cache first, so the app starts and classifies without a network. The export fills
// in VERSION (a hash of the files) and FILES.
const VERSION = '__VERSION__';
const FILES = __FILES__;

self.addEventListener('install', (event) => {
  // fresh copies, not the browser's HTTP cache (which may still hold the last version's)
  event.waitUntil(caches.open(VERSION)
    .then((cache) => cache.addAll(FILES.map((file) => new Request(file, {cache: 'reload'}))))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names  // this app's older versions only: an origin may hold others
      .filter((n) => n.startsWith('gimefive-') && n !== VERSION).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET') return;
  event.respondWith(caches.open(VERSION)
    .then((cache) => cache.match(event.request, {ignoreSearch: true}))
    .then((cached) => cached || fetch(event.request)));
});
