// v8help help page: shows the administrators' current message, or the last one this
// browser saw when the message service cannot be reached either.
//
// Every text goes in with textContent, never as HTML. The page runs under a strict
// Content-Security-Policy (no inline code, Trusted Types required), so an accidental
// innerHTML would throw instead of running a message's markup.
'use strict';

(() => {
  // From message.js, which help.html loads first; sw.js uses the same functions.
  const { LAST_MESSAGE_CACHE, fetchMessage, remember } = self.v8helpMessage;

  const STRINGS = {
    en: {
      titleFallback: 'Cannot connect to the application',
      titleDirect: 'Messages from your administrators',
      network: 'The server cannot be reached.',
      timeout: 'The server did not answer within {seconds} seconds.',
      status: 'The server answered with error {status}.',
      later: 'Try again in a few minutes.',
      messageHeading: 'Message from your administrators',
      expires: 'Valid until {time}',
      fetched: 'Received {time}. The message service cannot be reached now, so this message may be out of date.',
      help: 'Need help',
      retry: 'Try again',
      refresh: 'Check again',
      checking: 'Checking for a message from your administrators…',
      noMessage: 'There is no message from your administrators at the moment.',
      unreachable: 'The message service cannot be reached either, and there is no recent message to show.',
      expired: 'The message has expired.',
    },
    ru: {
      titleFallback: 'Не удаётся подключиться к приложению',
      titleDirect: 'Сообщения администраторов',
      network: 'Сервер недоступен.',
      timeout: 'Сервер не ответил за {seconds} с.',
      status: 'Сервер ответил ошибкой {status}.',
      later: 'Попробуйте ещё раз через несколько минут.',
      messageHeading: 'Сообщение администраторов',
      expires: 'Действует до {time}',
      fetched: 'Получено {time}. Служба сообщений сейчас недоступна, поэтому сообщение может быть устаревшим.',
      help: 'Нужна помощь',
      retry: 'Повторить',
      refresh: 'Проверить снова',
      checking: 'Проверяем, есть ли сообщение администраторов…',
      noMessage: 'Сейчас сообщений от администраторов нет.',
      unreachable: 'Служба сообщений тоже недоступна, а свежего сообщения в памяти браузера нет.',
      expired: 'Срок действия сообщения истёк.',
    },
    kk: {
      titleFallback: 'Қосымшаға қосылу мүмкін емес',
      titleDirect: 'Әкімшілердің хабарламалары',
      network: 'Серверге қосылу мүмкін емес.',
      timeout: 'Сервер {seconds} секунд ішінде жауап бермеді.',
      status: 'Сервер {status} қатесімен жауап берді.',
      later: 'Бірнеше минуттан кейін қайталап көріңіз.',
      messageHeading: 'Әкімшілердің хабарламасы',
      expires: '{time} дейін жарамды',
      fetched: 'Алынған уақыты: {time}. Хабарлама қызметі қазір қолжетімсіз, сондықтан бұл хабарлама ескірген болуы мүмкін.',
      help: 'Көмек керек',
      retry: 'Қайталау',
      refresh: 'Қайта тексеру',
      checking: 'Әкімшілерден хабарлама бар-жоғы тексерілуде…',
      noMessage: 'Қазір әкімшілерден хабарлама жоқ.',
      unreachable: 'Хабарлама қызметі де қолжетімсіз, ал көрсетуге болатын жаңа хабарлама жоқ.',
      expired: 'Хабарламаның мерзімі өтті.',
      // For browsers without Kazakh dates (CLDR's medium date and short time).
      months: ['қаң.', 'ақп.', 'нау.', 'сәу.', 'мам.', 'мау.', 'шіл.', 'там.', 'қыр.', 'қаз.', 'қар.', 'жел.'],
      date: '{y} ж. {d} {MMM}, {HH}:{mm}',
    },
    lv: {
      titleFallback: 'Nevar izveidot savienojumu ar lietotni',
      titleDirect: 'Administratoru ziņojumi',
      network: 'Serveris nav sasniedzams.',
      timeout: 'Serveris neatbildēja {seconds} sekunžu laikā.',
      status: 'Serveris atbildēja ar kļūdu {status}.',
      later: 'Mēģiniet vēlreiz pēc dažām minūtēm.',
      messageHeading: 'Administratoru ziņojums',
      expires: 'Spēkā līdz {time}',
      fetched: 'Saņemts {time}. Ziņojumu pakalpojums pašlaik nav sasniedzams, tāpēc šis ziņojums var būt novecojis.',
      help: 'Nepieciešama palīdzība',
      retry: 'Mēģināt vēlreiz',
      refresh: 'Pārbaudīt vēlreiz',
      checking: 'Pārbaudām, vai ir administratoru ziņojums…',
      noMessage: 'Pašlaik nav neviena administratoru ziņojuma.',
      unreachable: 'Arī ziņojumu pakalpojums nav sasniedzams, un nav neviena nesena ziņojuma, ko parādīt.',
      expired: 'Ziņojuma derīguma termiņš ir beidzies.',
      months: ['janv.', 'febr.', 'marts', 'apr.', 'maijs', 'jūn.', 'jūl.', 'aug.', 'sept.', 'okt.', 'nov.', 'dec.'],
      date: '{y}. gada {d}. {MMM} {HH}:{mm}',
    },
    hy: {
      titleFallback: 'Հնարավոր չէ միանալ հավելվածին',
      titleDirect: 'Ադմինիստրատորների հաղորդագրություններ',
      network: 'Սերվերը հասանելի չէ։',
      timeout: 'Սերվերը չպատասխանեց {seconds} վայրկյանի ընթացքում։',
      status: 'Սերվերը պատասխանեց {status} սխալով։',
      later: 'Փորձեք կրկին մի քանի րոպեից։',
      messageHeading: 'Հաղորդագրություն ադմինիստրատորներից',
      expires: 'Գործում է մինչև {time}',
      fetched: 'Ստացվել է {time}։ Հաղորդագրությունների ծառայությունն այժմ հասանելի չէ, ուստի այս հաղորդագրությունը կարող է հնացած լինել։',
      help: 'Օգնություն',
      retry: 'Կրկին փորձել',
      refresh: 'Կրկին ստուգել',
      checking: 'Ստուգում ենք, արդյոք կա հաղորդագրություն ադմինիստրատորներից…',
      noMessage: 'Այս պահին ադմինիստրատորներից հաղորդագրություն չկա։',
      unreachable: 'Հաղորդագրությունների ծառայությունը նույնպես հասանելի չէ, և ցույց տալու թարմ հաղորդագրություն չկա։',
      expired: 'Հաղորդագրության ժամկետը լրացել է։',
      months: ['հնվ', 'փտվ', 'մրտ', 'ապր', 'մյս', 'հնս', 'հլս', 'օգս', 'սեպ', 'հոկ', 'նոյ', 'դեկ'],
      date: '{d} {MMM}, {y} թ., {HH}:{mm}',
    },
  };

  const languages = (navigator.languages && navigator.languages.length)
    ? Array.from(navigator.languages)
    : [navigator.language || 'en'];
  const primary = languages[0];
  // The first of the browser's languages the page has texts for (en when none); dates are
  // written in that language too (the browser's own order when none fits).
  const known = (tag) => Object.prototype.hasOwnProperty.call(STRINGS, tag.toLowerCase().split('-')[0]);
  const uiIndex = languages.findIndex(known);
  const uiLanguage = uiIndex >= 0 ? languages[uiIndex].toLowerCase().split('-')[0] : 'en';
  const dateLocales = uiIndex >= 0 ? languages.slice(uiIndex) : languages;
  const T = STRINGS[uiLanguage];

  const $ = (id) => document.getElementById(id);
  const meta = (name) => {
    const element = document.querySelector(`meta[name="${name}"]`);
    return element ? element.content : '';
  };
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key]));

  // document.baseURI is the folder of help.html, also when sw.js serves this page in place
  // of a failed navigation (it then adds a <base> pointing there).
  const base = document.baseURI;
  const serviceUrl = new URL(meta('v8help-message-service') || 'message.json', base);
  const lastMessageKey = new URL('last-message', base).href;
  // Set by sw.js when this page stands in for a failed navigation: "network",
  // "timeout:<seconds>" or "status:<code>".
  const fallback = meta('v8help-fallback');

  let dateFormat;
  try {
    dateFormat = new Intl.DateTimeFormat(dateLocales, { dateStyle: 'medium', timeStyle: 'short' });
  } catch (_) {
    dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }
  // A browser without date names for the page's language (Chromium has no Armenian ones)
  // would write the date in English: the page then writes it itself, in local time.
  let intlKnows = false;
  try {
    intlKnows = Intl.DateTimeFormat.supportedLocalesOf([uiLanguage]).length > 0;
  } catch (_) {
    intlKnows = false;
  }
  if (!intlKnows && T.months && T.date) {
    const two = (n) => String(n).padStart(2, '0');
    dateFormat = {
      format: (ms) => {
        const t = new Date(ms);
        return fill(T.date, {
          y: t.getFullYear(), d: t.getDate(), MMM: T.months[t.getMonth()], HH: two(t.getHours()), mm: two(t.getMinutes()),
        });
      },
    };
  }

  function setText(id, text) {
    $(id).textContent = text;
  }

  function setStatus(text) {
    setText('status', text);
  }

  // What the page ended up showing, for scripts and tests: checking, live, cached, none,
  // unreachable or expired.
  function setState(state) {
    document.body.dataset.state = state;
  }

  function staticTexts() {
    document.documentElement.lang = uiLanguage;
    const title = fallback ? T.titleFallback : T.titleDirect;
    document.title = title;
    setText('title', title);
    setText('message-heading', T.messageHeading);
    setText('help-link', T.help);
    setText('retry', fallback ? T.retry : T.refresh);
    const lead = $('lead');
    if (!fallback) {
      lead.hidden = true;
      return;
    }
    const [kind, value] = fallback.split(':');
    let reason = T.network;
    if (kind === 'timeout') reason = fill(T.timeout, { seconds: value });
    if (kind === 'status') reason = fill(T.status, { status: value });
    lead.textContent = `${reason} ${T.later}`;
  }

  // Milliseconds of `expires`, null when the message has none, NaN when it is unreadable.
  function expiresAt(message) {
    if (message.expires === undefined || message.expires === null) return null;
    return typeof message.expires === 'string' ? Date.parse(message.expires) : NaN;
  }

  // A message is shown only while its `expires` (if any) is ahead by this browser's clock.
  function showable(message, now) {
    if (!message || typeof message !== 'object') return false;
    if (typeof message.userMessage !== 'string' || message.userMessage === '') return false;
    const expires = expiresAt(message);
    if (Number.isNaN(expires)) return false;
    return expires === null || expires > now;
  }

  function helpHref(value) {
    if (typeof value !== 'string' || value === '') return null;
    try {
      const url = new URL(value);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function hideMessage() {
    $('message').hidden = true;
    setText('message-text', '');
  }

  // Shows `message`; `fetchedAt` (ISO time) marks one that came from the cache.
  function showMessage(message, fetchedAt) {
    setText('message-text', message.userMessage);
    const expires = expiresAt(message);
    const expiresLine = $('message-expires');
    expiresLine.hidden = expires === null;
    if (expires !== null) expiresLine.textContent = fill(T.expires, { time: dateFormat.format(expires) });
    const fetchedLine = $('message-fetched');
    const fetched = fetchedAt ? Date.parse(fetchedAt) : NaN;
    fetchedLine.hidden = Number.isNaN(fetched);
    if (!Number.isNaN(fetched)) fetchedLine.textContent = fill(T.fetched, { time: dateFormat.format(fetched) });
    $('message').classList.toggle('cached', !Number.isNaN(fetched));
    const href = helpHref(message.helpUrl);
    $('message-help').hidden = href === null;
    if (href !== null) $('help-link').href = href;
    $('message').hidden = false;
    if (expires !== null) {
      // Checked every second rather than with one long timer, so that a computer waking
      // from sleep hides a message that expired meanwhile at once.
      const timer = setInterval(() => {
        if (Date.now() >= expires) {
          clearInterval(timer);
          hideMessage();
          setStatus(T.expired);
          setState('expired');
        }
      }, 1000);
    }
  }

  async function recall() {
    if (!('caches' in self)) return null;
    const cache = await caches.open(LAST_MESSAGE_CACHE);
    const response = await cache.match(lastMessageKey);
    if (!response) return null;
    const record = await response.json();
    return record && typeof record === 'object' && typeof record.fetchedAt === 'string' ? record : null;
  }

  async function main() {
    staticTexts();
    $('retry').addEventListener('click', () => window.location.reload());
    setStatus(T.checking);
    setState('checking');
    let live = null;
    try {
      live = await fetchMessage(serviceUrl, primary);
    } catch (_) {
      live = null;
    }
    if (live) {
      await remember(live, lastMessageKey, serviceUrl).catch(() => {});
      if (showable(live, Date.now())) {
        showMessage(live, null);
        setStatus('');
        setState('live');
      } else {
        setStatus(T.noMessage);
        setState('none');
      }
      return;
    }
    const record = await recall().catch(() => null);
    if (record && showable(record.message, Date.now())) {
      showMessage(record.message, record.fetchedAt);
      setStatus('');
      setState('cached');
    } else {
      setStatus(T.unreachable);
      setState('unreachable');
    }
  }

  main();
})();
