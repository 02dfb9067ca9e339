// v8help service worker: keeps the help page and the last administrators' message in the
// browser, and shows that page when a navigation fails.
//
// A navigation fails when the network errors, when no response comes within
// NAVIGATION_TIMEOUT_MS, or when the web server answers 5xx. The help page then asks the
// message service itself and, if that fails too, shows the last message kept here.
//
// v8help fills in CONFIG when it serves this file: the build's version (the crate version
// and a hash of every embedded web asset) and the message service URL. A new build
// therefore changes these bytes, the browser installs the new worker, and `activate`
// deletes the caches of older builds.
'use strict';

const CONFIG = /*{{CONFIG}}*/ { version: 'unrendered', messageService: '' };

/** How long a navigation may wait for the web server's response headers. */
const NAVIGATION_TIMEOUT_MS = 10000;
/** How long the worker waits for the message service. */
const MESSAGE_TIMEOUT_MS = 8000;
/** Least time between two message refreshes the worker starts on its own. */
const REFRESH_INTERVAL_MS = 10000;

const ASSET_CACHE_PREFIX = 'v8help-assets-';
const ASSET_CACHE = ASSET_CACHE_PREFIX + CONFIG.version;
// Not versioned: the last message outlives an upgrade of the worker.
const LAST_MESSAGE_CACHE = 'v8help-last-message';

// Everything is addressed relative to this script, so a reverse proxy may publish v8help
// under any path prefix (e.g. /v8help/sw.js).
const HERE = new URL('./', self.location.href);
const HELP_URL = new URL('help', HERE).href;
const ASSETS = ['help', 'help.css', 'help.js'].map((path) => new URL(path, HERE).href);
const LAST_MESSAGE_KEY = new URL('last-message', HERE).href;
const SERVICE_URL = new URL(CONFIG.messageService || 'message.json', HERE);

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(ASSET_CACHE);
    // cache: 'reload' skips the HTTP cache: the copies must be this build's.
    await cache.addAll(ASSETS.map((url) => new Request(url, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names
      .filter((name) => name.startsWith(ASSET_CACHE_PREFIX) && name !== ASSET_CACHE)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
  event.waitUntil(refreshMessage());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  // Top-level pages only: a frame (a report or a file the publication loads in an iframe)
  // keeps the browser's own handling, so a slow download is never replaced by this page.
  if (request.mode === 'navigate') {
    if (request.destination === 'document') event.respondWith(navigate(event));
    return;
  }
  const url = new URL(request.url);
  url.search = '';
  if (ASSETS.includes(url.href)) {
    event.respondWith(asset(request));
  }
});

/** The web server's answer, or the help page when it fails. */
async function navigate(event) {
  let response = null;
  let reason;
  try {
    response = await withTimeout(fetch(event.request), NAVIGATION_TIMEOUT_MS);
    if (response.status < 500) {
      event.waitUntil(refreshMessage());
      return response;
    }
    reason = `status:${response.status}`;
  } catch (error) {
    reason = error instanceof TimeoutError ? `timeout:${NAVIGATION_TIMEOUT_MS / 1000}` : 'network';
  }
  const page = await helpPage(reason).catch(() => null);
  return page || response || Response.error();
}

/**
 * The cached help page for a failed navigation. It keeps the address of the page that
 * failed, so a <base> pointing at v8help's folder is added for its stylesheet, script and
 * message URLs, and a meta tag tells the page why it is shown.
 */
async function helpPage(reason) {
  const cache = await caches.open(ASSET_CACHE);
  const cached = await cache.match(HELP_URL);
  if (!cached) return null;
  const html = await cached.text();
  const head = `<head><base href="${HERE.href}"><meta name="v8help-fallback" content="${reason}">`;
  const headers = new Headers(cached.headers);
  headers.delete('Content-Length');
  headers.set('Cache-Control', 'no-store');
  return new Response(html.replace('<head>', head), { status: 200, headers });
}

/** Precached assets: this build's copies first, the network if they are missing. */
async function asset(request) {
  const cache = await caches.open(ASSET_CACHE);
  const cached = await cache.match(request, { ignoreSearch: true });
  return cached || fetch(request);
}

class TimeoutError extends Error {}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let refreshing = null;
let lastRefresh = 0;

/** Fetches the current message and keeps it; at most one at a time, errors ignored. */
function refreshMessage() {
  if (refreshing) return refreshing;
  if (Date.now() - lastRefresh < REFRESH_INTERVAL_MS) return Promise.resolve();
  lastRefresh = Date.now();
  refreshing = fetchMessage()
    .then(remember)
    .catch(() => {})
    .finally(() => { refreshing = null; });
  return refreshing;
}

async function fetchMessage() {
  const url = new URL(SERVICE_URL);
  const languages = self.navigator.languages || [];
  if (languages.length) url.searchParams.set('lang', languages[0]);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), MESSAGE_TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      signal: abort.signal,
      cache: 'no-store',
      credentials: 'omit',
      mode: 'cors',
      headers: { Accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`message service answered ${response.status}`);
    const body = await response.json();
    if (!body || typeof body !== 'object' || typeof body.userMessage !== 'string') {
      throw new Error('message service answered without a userMessage');
    }
    return body;
  } finally {
    clearTimeout(timer);
  }
}

/** Keeps `message` with when it was fetched; the help page reads the same entry. */
async function remember(message) {
  const cache = await caches.open(LAST_MESSAGE_CACHE);
  const record = { message, fetchedAt: new Date().toISOString(), source: SERVICE_URL.href };
  await cache.put(LAST_MESSAGE_KEY, new Response(JSON.stringify(record), {
    headers: { 'Content-Type': 'application/json' },
  }));
}
