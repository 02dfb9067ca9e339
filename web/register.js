// v8help: registers the offline-help service worker. A web publication includes it once:
//
//   <script src="/v8help/register.js" defer></script>
//
// sw.js is taken from the same folder as this script. The worker's scope is "/" (the whole
// origin, allowed by the Service-Worker-Allowed header v8help sends with sw.js); set
// data-scope="/base/" on the tag to cover only one publication.
'use strict';

(() => {
  if (!('serviceWorker' in navigator)) return;
  const script = document.currentScript;
  const source = script && script.src ? script.src : window.location.href;
  const scope = (script && script.dataset.scope) || '/';
  const worker = new URL('sw.js', source).href;
  const register = () => {
    navigator.serviceWorker.register(worker, { scope }).catch((error) => {
      console.warn('v8help: the offline help page could not be installed:', error);
    });
  };
  if (document.readyState === 'complete') {
    register();
  } else {
    window.addEventListener('load', register, { once: true });
  }
})();
