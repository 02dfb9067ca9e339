// v8help: registers the offline-help service worker. A web publication includes it once:
//
//   <script src="/v8help/register.js" defer></script>
//
// sw.js is taken from the same folder as this script. The worker's scope is "/" (the whole
// origin, allowed by the Service-Worker-Allowed header v8help sends with sw.js); set
// data-scope="/base/" on the tag to cover only one publication. Under a CSP that requires
// Trusted Types, allow the policy name: `trusted-types v8help`.
//
// One v8help serving many bases (`--messages`): data-base="NAME" makes the help page and
// the worker use base NAME's message (they are taken from NAME/ beside this script):
//
//   <script src="/v8help/register.js" data-base="erp" data-scope="/erp/" defer></script>
//
// Loading the script from the base's own folder (/v8help/erp/register.js) does the same.
'use strict';

(() => {
  if (!('serviceWorker' in navigator)) return;
  const script = document.currentScript;
  const source = script && script.src ? script.src : window.location.href;
  const scope = (script && script.dataset.scope) || '/';
  // A base name as v8help accepts it; anything else is ignored with a warning.
  const base = (script && script.dataset.base) || '';
  const validBase = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/.test(base);
  if (base && !validBase) console.warn('v8help: data-base is not a base name:', base);
  let worker = new URL(validBase ? `${base}/sw.js` : 'sw.js', source).href;
  // Under a CSP that requires Trusted Types the URL must come from a policy; allow the
  // name with `trusted-types v8help` in the publication's CSP.
  if (window.trustedTypes && window.trustedTypes.createPolicy) {
    try {
      const url = worker;
      worker = window.trustedTypes.createPolicy('v8help', { createScriptURL: () => url }).createScriptURL(url);
    } catch (_) {
      // Trusted Types not enforced, or the name not allowed: the plain string is all we have.
    }
  }
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
