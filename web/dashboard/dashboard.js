// The Splitstream dashboard: the experiments and their results, read from the same API as
// every other client (docs/openapi.yaml) with the admin token. No framework and no build
// step: the server embeds this file as it is. Every text that comes from the API is set
// with textContent, never parsed as HTML.

const TOKEN_KEY = 'splitstream.adminToken';
// The auto-refresh interval: 15 s, or `?refresh=SECONDS` in the address (1 to 3600).
const REFRESH_MS = (() => {
  const q = Number(new URLSearchParams(location.search).get('refresh'));
  return Number.isFinite(q) && q >= 1 && q <= 3600 ? Math.round(q * 1000) : 15000;
})();

const el = (id) => document.getElementById(id);
// Auto-refresh: on while `autoRefresh`; the next refresh is scheduled only once the previous
// one has ended, so a results computation slower than REFRESH_MS never piles up requests.
let autoRefresh = false;
let refreshTimer = null;

// ---- the token: from "#token=..." once (then removed from the address bar), else the tab ----

function takeTokenFromFragment() {
  const m = /^#token=([^&]*)/.exec(location.hash);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search + '#/');
}

const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

// ---- the API ----

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { Authorization: 'Bearer ' + token(), Accept: 'application/json' },
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `the server did not answer (${e.message})`);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // an empty or non-JSON body: reported below by status
  }
  if (!res.ok) {
    const err = body && body.error ? body.error : {};
    const field = err.field ? ` (${err.field})` : '';
    throw new ApiError(res.status, err.code || 'http_' + res.status,
                       (err.message || `HTTP ${res.status}`) + field);
  }
  return body;
}

// ---- small DOM helpers ----

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'onclick') node.addEventListener('click', v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// `source` tells a failed page load ('route', cleared by the next load that works) from the
// outcome of a button ('action', kept until the next message).
function showBanner(message, kind = 'error', source = 'action') {
  const b = el('banner');
  b.textContent = message;
  b.className = kind;
  b.dataset.source = source;
  b.hidden = !message;
}

function fmtNumber(v, digits = 4) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString('en-US');
  return Number(v.toPrecision(digits)).toLocaleString('en-US', { maximumSignificantDigits: digits });
}

function fmtPercent(v, signed = false) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const s = (v * 100).toFixed(2) + ' %';
  return signed && v > 0 ? '+' + s : s;
}

function fmtInterval(ci, asPercent) {
  if (!Array.isArray(ci) || ci.length !== 2) return '–';
  const f = asPercent ? (x) => fmtPercent(x, true) : (x) => fmtNumber(x);
  return `[${f(ci[0])}, ${f(ci[1])}]`;
}

function fmtP(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return '–';
  return p < 0.0001 ? '< 0.0001' : p.toFixed(4);
}

function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

const statusBadge = (status) => h('span', { class: 'badge status-' + status, 'data-testid': 'status' }, status);

// ---- views ----

function setView(...nodes) {
  el('view').replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

async function showList() {
  const body = await api('GET', '/v1/experiments');
  const rows = body.experiments.map((e) =>
    h('tr', { 'data-testid': 'experiment-row', 'data-key': e.key },
      h('td', {}, h('a', { href: '#/experiments/' + encodeURIComponent(e.key) }, e.key)),
      h('td', {}, e.name),
      h('td', {}, statusBadge(e.status)),
      h('td', {}, e.variants.map((v) => `${v.key} ${fmtPercent(v.weight)}`).join(' · ')),
      h('td', { class: 'num' }, fmtPercent(e.traffic)),
      h('td', {}, (e.metrics || []).map((m) => m.key).join(', ') || '–'),
      h('td', {}, fmtTime(e.created_at))));
  setView(
    h('h1', {}, 'Experiments'),
    rows.length === 0
      ? h('p', { 'data-testid': 'empty' },
          'No experiments yet. Create one with POST /v1/experiments (see the README).')
      : h('table', { 'data-testid': 'experiments' },
          h('thead', {}, h('tr', {}, ['Key', 'Name', 'Status', 'Variants', 'Traffic', 'Metrics', 'Created']
            .map((t) => h('th', {}, t)))),
          h('tbody', {}, rows)));
}

function variantsTable(experiment, results) {
  const users = new Map((results ? results.variants : []).map((v) => [v.key, v.users]));
  const total = [...users.values()].reduce((a, b) => a + b, 0);
  return h('table', { 'data-testid': 'variants' },
    h('thead', {}, h('tr', {}, ['Variant', 'Weight', 'Users', 'Share'].map((t, i) => h('th', { class: i ? 'num' : '' }, t)))),
    h('tbody', {}, experiment.variants.map((v, i) => {
      const n = users.get(v.key);
      return h('tr', { 'data-testid': 'variant-row', 'data-variant': v.key },
        h('td', {}, v.key, i === 0 ? h('span', { class: 'muted' }, ' (control)') : null),
        h('td', { class: 'num' }, fmtPercent(v.weight)),
        h('td', { class: 'num', 'data-testid': 'users' }, n === undefined ? '–' : fmtNumber(n)),
        h('td', { class: 'num' }, n === undefined || total === 0 ? '–' : fmtPercent(n / total)));
    })));
}

function srmLine(results) {
  const s = results.srm;
  if (!s) return h('p', { 'data-testid': 'srm', class: 'muted' }, 'Sample ratio: not enough users to test.');
  const text = s.mismatch
    ? `Sample ratio mismatch: p = ${fmtP(s.p_value)} (χ² ${fmtNumber(s.chi2)}). The split of users does not match the weights; do not trust the figures below until the cause is found.`
    : `Sample ratio as configured (p = ${fmtP(s.p_value)}).`;
  return h('p', { 'data-testid': 'srm', class: s.mismatch ? 'warn' : 'muted' }, text);
}

function freshnessLine(results) {
  const f = results.freshness || {};
  if (!f.newest_change) {
    return h('p', { 'data-testid': 'freshness', class: 'muted' },
      'No rows of this experiment in ClickHouse yet: the pipeline has not caught up, or is not running.');
  }
  return h('p', { 'data-testid': 'freshness', class: 'muted' },
    `Data up to ${fmtTime(f.newest_change)} (${fmtNumber(f.age_seconds, 3)} s before the computation at ${fmtTime(results.computed_at)}).`);
}

function metricCard(m, results) {
  const asPercent = m.kind === 'conversion';
  const title = h('h3', {}, m.key,
    h('span', { class: 'muted' }, ` ${m.kind}${m.kind === 'quantile' ? ' p' + m.quantile : ''} of ${m.event_type}` +
      (m.denominator_event_type ? ` / ${m.denominator_event_type}` : '') +
      (m.window_hours ? `, ${m.window_hours} h after exposure` : '') +
      (m.higher_is_better === false ? ', lower is better' : '')),
    m.guardrail ? h('span', { class: 'badge guardrail' }, 'guardrail') : null);
  if (m.error) {
    return h('article', { class: 'metric', 'data-testid': 'metric', 'data-metric': m.key },
      title, h('p', { class: 'warn', 'data-testid': 'metric-error' }, m.error));
  }
  const byVariant = new Map((m.comparisons || []).map((c) => [c.variant, c]));
  const seq = results.settings && results.settings.sequential;
  const rows = (m.variants || []).map((v, i) => {
    const c = byVariant.get(v.key);
    return h('tr', { 'data-testid': 'metric-row', 'data-variant': v.key },
      h('td', {}, v.key),
      h('td', { class: 'num' }, fmtNumber(v.users)),
      h('td', { class: 'num', 'data-testid': 'value' }, asPercent ? fmtPercent(v.mean) : fmtNumber(v.mean)),
      h('td', { class: 'num' }, i === 0 || !c ? '' : fmtPercent(c.lift_rel, true)),
      h('td', { class: 'num' }, i === 0 || !c ? '' : fmtInterval(seq ? c.seq_ci_rel : c.ci_rel, true)),
      h('td', { class: 'num' }, i === 0 || !c ? '' : fmtP(seq ? c.seq_p_value : c.p_value)),
      h('td', { class: 'num' }, i === 0 || !c ? '' : fmtP(c.p_value_adjusted)),
      h('td', { class: 'num' }, i === 0 || !c ? '' : fmtPercent(c.chance_to_beat)));
  });
  const verdicts = (m.comparisons || []).map((c) =>
    h('li', { 'data-testid': 'verdict', class: c.significant ? 'direction-' + c.direction : '' }, c.verdict));
  return h('article', { class: 'metric', 'data-testid': 'metric', 'data-metric': m.key },
    title,
    h('table', {},
      h('thead', {}, h('tr', {}, ['Variant', m.kind === 'quantile' ? 'Values' : 'Users', m.kind === 'conversion' ? 'Rate' : 'Value',
        'Lift', seq ? 'CI (sequential)' : 'CI', 'p', 'p adjusted', 'Chance to beat control']
        .map((t, i) => h('th', { class: i ? 'num' : '' }, t)))),
      h('tbody', {}, rows)),
    h('ul', { class: 'verdicts' }, verdicts));
}

async function changeStatus(key, action) {
  showBanner('');
  try {
    await api('POST', `/v1/experiments/${encodeURIComponent(key)}/${action}`);
    showBanner(`Experiment ${key}: ${action === 'start' ? 'started' : 'stopped'}.`, 'info');
  } catch (e) {
    showBanner(`Could not ${action} ${key}: ${e.message}`);
  }
  await route();
}

async function showExperiment(key) {
  const e = await api('GET', '/v1/experiments/' + encodeURIComponent(key));
  let results = null;
  let resultsError = null;
  try {
    results = await api('GET', `/v1/experiments/${encodeURIComponent(key)}/results`);
  } catch (err) {
    if (err.status === 401 || err.status === 403) throw err;
    resultsError = err;
  }
  const actions = [];
  if (e.status === 'draft') {
    actions.push(h('button', { type: 'button', 'data-testid': 'start', onclick: () => changeStatus(e.key, 'start') }, 'Start'));
  } else if (e.status === 'running') {
    actions.push(h('button', { type: 'button', 'data-testid': 'stop', onclick: () => changeStatus(e.key, 'stop') }, 'Stop'));
  }
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh', 'data-testid': 'auto-refresh' });
  auto.checked = autoRefresh;
  auto.addEventListener('change', () => setAutoRefresh(auto.checked));
  setView(
    h('p', {}, h('a', { href: '#/' }, '← all experiments')),
    h('h1', { 'data-testid': 'title' }, e.name, ' ', h('span', { class: 'muted' }, e.key), ' ', statusBadge(e.status)),
    e.description ? h('p', {}, e.description) : null,
    h('div', { class: 'toolbar' }, actions,
      h('button', { type: 'button', 'data-testid': 'refresh', onclick: () => route() }, 'Refresh'),
      h('label', {}, auto, ` refresh every ${REFRESH_MS / 1000} s`)),
    h('h2', {}, 'Variants'),
    variantsTable(e, results),
    resultsError
      ? h('p', { class: 'warn', 'data-testid': 'results-error' }, `Results unavailable: ${resultsError.message}`)
      : [results.variants.every((v) => v.users === 0)
           ? h('p', { 'data-testid': 'no-users' }, 'No users exposed yet: the figures below fill in as users are assigned.')
           : null,
         srmLine(results), freshnessLine(results),
         h('h2', {}, 'Metrics'),
         results.metrics.length === 0
           ? h('p', { class: 'muted' }, 'This experiment declares no metrics.')
           : results.metrics.map((m) => metricCard(m, results)),
         h('p', { class: 'muted small' },
           `α = ${results.settings.alpha}; ${results.settings.sequential ? 'sequential (always-valid) intervals' : 'fixed-horizon intervals'}; CUPED ${results.settings.cuped ? 'on' : 'off'}. ` +
           'See docs/statistics.md for the methods.')]);
}

function setAutoRefresh(on) {
  autoRefresh = on;
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  refreshTimer = null;
  if (on) scheduleRefresh();
}

function scheduleRefresh() {
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    await route({ quiet: true });
    if (autoRefresh && refreshTimer === null) scheduleRefresh();
  }, REFRESH_MS);
}

// ---- routing: "#/" the list, "#/experiments/KEY" one experiment ----

let routing = 0;
async function route({ quiet = false } = {}) {
  const mine = ++routing;
  if (!token()) {
    setAutoRefresh(false);
    el('token-form').hidden = false;
    el('sign-out').hidden = true;
    setView();
    return;
  }
  el('token-form').hidden = true;
  el('sign-out').hidden = false;
  const m = /^#\/experiments\/(.+)$/.exec(location.hash);
  if (!quiet) el('view').setAttribute('aria-busy', 'true');
  try {
    if (m) {
      await showExperiment(decodeURIComponent(m[1]));
    } else {
      setAutoRefresh(false);
      await showList();
    }
    if (mine === routing && el('banner').dataset.source === 'route') showBanner('');
  } catch (e) {
    if (mine !== routing) return;
    if (e.status === 401 || e.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      showBanner(`The token was refused: ${e.message}. Enter the admin token.`, 'error', 'route');
      return route();
    }
    showBanner(e.message, 'error', 'route');
  } finally {
    el('view').removeAttribute('aria-busy');
  }
}

function main() {
  takeTokenFromFragment();
  el('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, el('token-input').value.trim());
    el('token-input').value = '';
    showBanner('');
    route();
  });
  el('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    route();
  });
  window.addEventListener('hashchange', () => {
    takeTokenFromFragment();
    route();
  });
  route();
}

main();
