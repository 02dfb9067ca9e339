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
/** Least time between two message refreshes the worker starts on its own. */
const REFRESH_INTERVAL_MS = 10000;

const ASSET_CACHE_PREFIX = 'v8help-assets-';
const ASSET_CACHE = ASSET_CACHE_PREFIX + CONFIG.version;

// Everything is addressed relative to this script, so a reverse proxy may publish v8help
// under any path prefix (e.g. /v8help/sw.js).
const HERE = new URL('./', self.location.href);
const HELP_URL = new URL('help', HERE).href;
const ASSETS = ['help', 'help.css', 'message.js', 'help.js'].map((path) => new URL(path, HERE).href);
const LAST_MESSAGE_KEY = new URL('last-message', HERE).href;
const SERVICE_URL = new URL(CONFIG.messageService || 'message.json', HERE);

// fetchMessage and remember, shared with the help page, from message.js in this folder.
importScripts(trustedScriptUrl(new URL('message.js', HERE).href));
const { fetchMessage, remember } = self.v8helpMessage;

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

/**
 * `url` as a TrustedScriptURL when the browser has Trusted Types. importScripts is a Trusted
 * Types sink: the worker runs under the CSP of the sw.js response only (not the registering
 * page's), which v8help leaves out, but a proxy adding the publication's CSP to every
 * response puts it under that one. The policy is register.js's `v8help`, which such a CSP
 * allows (`trusted-types v8help`), and it vouches only for this URL.
 */
function trustedScriptUrl(url) {
  if (!self.trustedTypes || !self.trustedTypes.createPolicy) return url;
  try {
    return self.trustedTypes.createPolicy('v8help', { createScriptURL: () => url }).createScriptURL(url);
  } catch (_) {
    // The name is not allowed. If Trusted Types are not required either, the string loads.
    return url;
  }
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
  const languages = self.navigator.languages || [];
  refreshing = fetchMessage(SERVICE_URL, languages.length ? languages[0] : undefined)
    .then((message) => remember(message, LAST_MESSAGE_KEY, SERVICE_URL))
    .catch(() => {})
    .finally(() => { refreshing = null; });
  return refreshing;
}
