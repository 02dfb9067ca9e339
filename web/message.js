// v8help: asking the message service for the current message and keeping the last one.
// Shared by the help page (loaded with <script src> before help.js) and the service worker
// (importScripts from sw.js), so both ask the same way and write the same record.
//
// A classic script, not a module: importScripts cannot load modules. It defines one object,
// self.v8helpMessage, and nothing else global (sw.js has top-level names of its own).
'use strict';

(() => {
  // Where the last message this browser saw is kept. Not versioned: the last message
  // outlives an upgrade of the worker.
  const LAST_MESSAGE_CACHE = 'v8help-last-message';
  // How long to wait for the message service.
  const MESSAGE_TIMEOUT_MS = 8000;

  /**
   * The message service's current message for `lang` (sent as `?lang=`; left out when
   * undefined). Rejects on a network error, a timeout, a status other than 2xx, or a body
   * without a `userMessage` string.
   */
  async function fetchMessage(serviceUrl, lang) {
    const url = new URL(serviceUrl);
    if (lang !== undefined) url.searchParams.set('lang', lang);
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

  /**
   * Keeps `message`, fetched from `serviceUrl`, with when it was fetched under `key` (the
   * URL of `last-message` in v8help's folder), where the help page reads it back.
   */
  async function remember(message, key, serviceUrl) {
    if (!('caches' in self)) return;
    const cache = await caches.open(LAST_MESSAGE_CACHE);
    const record = { message, fetchedAt: new Date().toISOString(), source: new URL(serviceUrl).href };
    await cache.put(key, new Response(JSON.stringify(record), {
      headers: { 'Content-Type': 'application/json' },
    }));
  }

  self.v8helpMessage = Object.freeze({ LAST_MESSAGE_CACHE, fetchMessage, remember });
})();
