// v8help check page: reports what the service worker has installed in this browser.
'use strict';

(() => {
  const set = (id, text) => { document.getElementById(id).textContent = text; };

  async function report() {
    if (!('serviceWorker' in navigator)) {
      set('worker', 'not supported here (a service worker needs HTTPS or localhost)');
      return;
    }
    const registration = await navigator.serviceWorker.getRegistration();
    set('worker', registration
      ? `registered, scope ${registration.scope}, ${registration.active ? 'active' : 'installing'}`
      : 'not registered yet');
    set('controller', navigator.serviceWorker.controller ? 'yes' : 'not yet (reload once it is active)');
    const names = (await caches.keys()).filter((name) => name.startsWith('v8help-assets-'));
    set('cache', names.length ? names.join(', ') : 'none yet');
    const cache = await caches.open('v8help-last-message');
    const keys = await cache.keys();
    const response = keys.length ? await cache.match(keys[0]) : null;
    const record = response ? await response.json() : null;
    set('last', record
      ? `${record.message.userMessage || '(no message)'} — received ${record.fetchedAt}`
      : 'none yet');
  }

  const refresh = () => { report().catch((error) => set('worker', `error: ${error}`)); };
  refresh();
  // Installing takes a moment (precache, first message): report again every 2 s.
  setInterval(refresh, 2000);
})();
