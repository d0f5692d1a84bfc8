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
  let value = m[1];
  try {
    value = decodeURIComponent(value);
  } catch {
    // not percent-encoded after all: taken as it is
  }
  sessionStorage.setItem(TOKEN_KEY, value);
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

async function api(method, path, body) {
  let res;
  try {
    const headers = { Authorization: 'Bearer ' + token(), Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `the server did not answer (${e.message})`);
  }
  let answer = null;
  try {
    answer = await res.json();
  } catch {
    // an empty or non-JSON body: reported below by status
  }
  if (!res.ok) {
    const err = answer && answer.error ? answer.error : {};
    const field = err.field ? ` (${err.field})` : '';
    throw new ApiError(res.status, err.code || 'http_' + res.status,
                       (err.message || `HTTP ${res.status}`) + field);
  }
  return answer;
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
// outcome of a button ('action', kept until the next message). Either is cleared when the
// address moves to another view than `keepFor`.
function showBanner(message, kind = 'error', source = 'action', keepFor = location.hash) {
  const b = el('banner');
  b.textContent = message;
  b.className = kind;
  b.dataset.source = source;
  b.dataset.keepFor = keepFor;
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

// Weights as shares of their sum (the API keeps them as given: 1, 1 and 2 are 25/25/50 %).
function shares(variants) {
  const total = variants.reduce((a, v) => a + v.weight, 0);
  return variants.map((v) => (total > 0 ? v.weight / total : NaN));
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
      h('td', {}, (() => {
        const w = shares(e.variants);
        return e.variants.map((v, i) => `${v.key} ${fmtPercent(w[i])}`).join(' · ');
      })()),
      h('td', { class: 'num' }, fmtPercent(e.traffic)),
      h('td', {}, (e.metrics || []).map((m) => m.key).join(', ') || '–'),
      h('td', {}, fmtTime(e.created_at))));
  setView(
    h('div', { class: 'toolbar' }, h('h1', {}, 'Experiments'),
      h('a', { class: 'button', href: '#/new', 'data-testid': 'new' }, 'New experiment')),
    rows.length === 0
      ? h('p', { 'data-testid': 'empty' },
          'No experiments yet. Create one with "New experiment" or POST /v1/experiments (see the README).')
      : h('table', { 'data-testid': 'experiments' },
          h('thead', {}, h('tr', {}, ['Key', 'Name', 'Status', 'Variants', 'Traffic', 'Metrics', 'Created']
            .map((t) => h('th', {}, t)))),
          h('tbody', {}, rows)));
}

function variantsTable(experiment, results) {
  const users = new Map((results ? results.variants : []).map((v) => [v.key, v.users]));
  const total = [...users.values()].reduce((a, b) => a + b, 0);
  const weights = shares(experiment.variants);
  return h('table', { 'data-testid': 'variants' },
    h('thead', {}, h('tr', {}, ['Variant', 'Weight', 'Users', 'Share'].map((t, i) => h('th', { class: i ? 'num' : '' }, t)))),
    h('tbody', {}, experiment.variants.map((v, i) => {
      const n = users.get(v.key);
      return h('tr', { 'data-testid': 'variant-row', 'data-variant': v.key },
        h('td', {}, v.key, i === 0 ? h('span', { class: 'muted' }, ' (control)') : null),
        h('td', { class: 'num', 'data-testid': 'weight' }, fmtPercent(weights[i])),
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

// ---- a new experiment: the common fields of POST /v1/experiments (the API checks them) ----

const KINDS = ['conversion', 'mean', 'count', 'ratio', 'quantile'];

function input(name, attrs = {}) {
  return h('input', { name, 'data-testid': 'field-' + name, ...attrs });
}

function variantRow(key = '', weight = '1') {
  const row = h('tr', { 'data-testid': 'variant-input' },
    h('td', {}, input('variant-key', { value: key, required: true, 'aria-label': 'variant key' })),
    h('td', {}, input('variant-weight', { type: 'number', min: '0', step: 'any', value: weight, required: true, 'aria-label': 'weight' })),
    h('td', {}, h('button', { type: 'button', onclick: () => row.remove() }, 'Remove')));
  return row;
}

function metricRow() {
  const kind = h('select', { name: 'metric-kind', 'data-testid': 'field-metric-kind', 'aria-label': 'kind' },
    KINDS.map((k) => h('option', { value: k }, k)));
  const row = h('tr', { 'data-testid': 'metric-input' },
    h('td', {}, input('metric-key', { required: true, 'aria-label': 'metric key' })),
    h('td', {}, input('metric-event', { required: true, 'aria-label': 'event type' })),
    h('td', {}, kind),
    h('td', {}, input('metric-denominator', { 'aria-label': 'denominator event type (ratio)' })),
    h('td', {}, input('metric-quantile', { type: 'number', min: '0', max: '1', step: 'any', 'aria-label': 'quantile (quantile)' })),
    h('td', {}, input('metric-window', { type: 'number', min: '1', step: '1', 'aria-label': 'window in hours' })),
    h('td', {}, input('metric-higher', { type: 'checkbox', checked: true, 'aria-label': 'higher is better' })),
    h('td', {}, input('metric-guardrail', { type: 'checkbox', 'aria-label': 'guardrail' })),
    h('td', {}, h('button', { type: 'button', onclick: () => row.remove() }, 'Remove')));
  return row;
}

// The request body from the form; empty optional fields are left out.
function specFromForm(form) {
  const val = (root, name) => root.querySelector(`[name=${name}]`).value.trim();
  const spec = { key: val(form, 'key') };
  if (val(form, 'name')) spec.name = val(form, 'name');
  if (val(form, 'description')) spec.description = val(form, 'description');
  spec.variants = [...form.querySelectorAll('[data-testid=variant-input]')].map((r) => ({
    key: val(r, 'variant-key'), weight: Number(val(r, 'variant-weight')),
  }));
  spec.traffic = Number(val(form, 'traffic'));
  if (val(form, 'layer')) {
    spec.layer = val(form, 'layer');
    spec.layer_start = Number(val(form, 'layer-start'));
    spec.layer_end = Number(val(form, 'layer-end'));
  }
  spec.metrics = [...form.querySelectorAll('[data-testid=metric-input]')].map((r) => {
    const m = { key: val(r, 'metric-key'), event_type: val(r, 'metric-event'), kind: val(r, 'metric-kind') };
    if (val(r, 'metric-denominator')) m.denominator_event_type = val(r, 'metric-denominator');
    if (val(r, 'metric-quantile')) m.quantile = Number(val(r, 'metric-quantile'));
    if (val(r, 'metric-window')) m.window_hours = Number(val(r, 'metric-window'));
    m.higher_is_better = r.querySelector('[name=metric-higher]').checked;
    m.guardrail = r.querySelector('[name=metric-guardrail]').checked;
    return m;
  });
  return spec;
}

function showNewExperiment() {
  setAutoRefresh(false);
  const variants = h('tbody', {}, variantRow('control'), variantRow('treatment'));
  const metrics = h('tbody', {});
  const start = input('start-now', { type: 'checkbox' });
  const form = h('form', { class: 'new-experiment', 'data-testid': 'new-form' },
    h('label', {}, 'Key ', input('key', { required: true, placeholder: 'checkout_button', autocomplete: 'off' })),
    h('label', {}, 'Name ', input('name', { placeholder: 'Checkout button colour' })),
    h('label', {}, 'Description ', input('description')),
    h('label', {}, 'Traffic (share of users, 0–1) ', input('traffic', { type: 'number', min: '0', max: '1', step: 'any', value: '1', required: true })),
    h('fieldset', {}, h('legend', {}, 'Layer (optional: mutually exclusive experiments)'),
      h('label', {}, 'Layer ', input('layer')),
      h('label', {}, 'Start ', input('layer-start', { type: 'number', min: '0', max: '1', step: 'any', value: '0' })),
      h('label', {}, 'End ', input('layer-end', { type: 'number', min: '0', max: '1', step: 'any', value: '1' }))),
    h('h2', {}, 'Variants (the first is the control)'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Key', 'Weight', ''].map((t) => h('th', {}, t)))), variants),
    h('button', { type: 'button', 'data-testid': 'add-variant', onclick: () => variants.append(variantRow('', '1')) }, 'Add variant'),
    h('h2', {}, 'Metrics'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Key', 'Event type', 'Kind', 'Denominator event (ratio)', 'Quantile (quantile)', 'Window, hours', 'Higher is better', 'Guardrail', '']
      .map((t) => h('th', {}, t)))), metrics),
    h('button', { type: 'button', 'data-testid': 'add-metric', onclick: () => metrics.append(metricRow()) }, 'Add metric'),
    h('p', {}, h('label', {}, start, ' start it at once (otherwise it is created as a draft)')),
    h('p', {}, h('button', { type: 'submit', 'data-testid': 'create' }, 'Create experiment')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showBanner('');
    const spec = specFromForm(form);
    try {
      const created = await api('POST', '/v1/experiments', spec);
      if (start.checked) await api('POST', `/v1/experiments/${encodeURIComponent(created.key)}/start`);
      const target = '#/experiments/' + encodeURIComponent(created.key);
      showBanner(`Experiment ${created.key} created${start.checked ? ' and started' : ''}.`, 'info', 'action', target);
      location.hash = target;
    } catch (e) {
      showBanner(`Not created: ${e.message}`);
    }
  });
  setView(h('p', {}, h('a', { href: '#/' }, '← all experiments')), h('h1', {}, 'New experiment'), form);
}

// Traffic and weights of a draft or running experiment (PATCH): stored assignments never
// move; users assigned from now on follow the new allocation.
function allocationForm(e) {
  const traffic = input('alloc-traffic', { type: 'number', min: '0', max: '1', step: 'any', value: String(e.traffic), required: true });
  const weights = e.variants.map((v) =>
    h('label', {}, `${v.key} `, input('alloc-weight', { type: 'number', min: '0', step: 'any', value: String(v.weight), required: true, 'data-variant': v.key })));
  const form = h('form', { class: 'allocation', 'data-testid': 'allocation-form' },
    h('label', {}, 'Traffic (share of users, 0–1) ', traffic), weights,
    h('button', { type: 'submit', 'data-testid': 'save-allocation' }, 'Save allocation'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {
      traffic: Number(traffic.value),
      variants: e.variants.map((v, i) => ({ key: v.key, weight: Number(weights[i].querySelector('input').value) })),
    };
    try {
      await api('PATCH', '/v1/experiments/' + encodeURIComponent(e.key), body);
      showBanner(`Allocation of ${e.key} saved: users assigned before keep their variant; new users follow the new traffic and weights.`, 'info');
    } catch (err) {
      showBanner(`Allocation of ${e.key} not saved: ${err.message}`);
    }
    await route();
  });
  return h('details', { 'data-testid': 'allocation', 'data-key': e.key }, h('summary', {}, 'Change traffic or weights'), form);
}

// An open allocation form is carried over when the page is drawn again (results arriving,
// auto-refresh), so what the user has typed stays.
function allocationFor(e) {
  if (e.status === 'stopped') return null;
  const open = document.querySelector('[data-testid=allocation][open]');
  return open && open.dataset.key === e.key ? open : allocationForm(e);
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

// The experiment at once, then its results, which can take seconds for a large experiment
// (a quiet refresh keeps the previous page until both are in). `current()` is false once
// another view has been asked for.
async function showExperiment(key, { quiet = false, current = () => true } = {}) {
  const e = await api('GET', '/v1/experiments/' + encodeURIComponent(key));
  if (!quiet && current()) renderExperiment(e, { loading: true });
  let results = null;
  let resultsError = null;
  try {
    results = await api('GET', `/v1/experiments/${encodeURIComponent(key)}/results`);
  } catch (err) {
    if (err.status === 401 || err.status === 403) throw err;
    resultsError = err;
  }
  if (current()) renderExperiment(e, { results, resultsError });
}

function renderExperiment(e, { loading = false, results = null, resultsError = null }) {
  const actions = [];
  if (e.status === 'draft') {
    actions.push(h('button', { type: 'button', 'data-testid': 'start', onclick: () => changeStatus(e.key, 'start') }, 'Start'));
  } else if (e.status === 'running') {
    actions.push(h('button', { type: 'button', 'data-testid': 'stop', onclick: () => changeStatus(e.key, 'stop') }, 'Stop'));
  }
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh', 'data-testid': 'auto-refresh' });
  auto.checked = autoRefresh;
  auto.addEventListener('change', () => setAutoRefresh(auto.checked));
  let body;
  if (loading) {
    body = h('p', { class: 'muted', 'data-testid': 'results-loading' },
      'Computing the results from ClickHouse (one query; seconds for millions of events)…');
  } else if (resultsError) {
    body = h('p', { class: 'warn', 'data-testid': 'results-error' }, `Results unavailable: ${resultsError.message}`);
  } else {
    body = [results.variants.every((v) => v.users === 0)
              ? h('p', { 'data-testid': 'no-users' }, 'No users exposed yet: the figures below fill in as users are assigned.')
              : null,
            srmLine(results), freshnessLine(results),
            h('h2', {}, 'Metrics'),
            results.metrics.length === 0
              ? h('p', { class: 'muted' }, 'This experiment declares no metrics.')
              : results.metrics.map((m) => metricCard(m, results)),
            h('p', { class: 'muted small' },
              `α = ${results.settings.alpha}; ${results.settings.sequential ? 'sequential (always-valid) intervals' : 'fixed-horizon intervals'}; CUPED ${results.settings.cuped ? 'on' : 'off'}. ` +
              'See docs/statistics.md for the methods.')];
  }
  setView(
    h('p', {}, h('a', { href: '#/' }, '← all experiments')),
    h('h1', { 'data-testid': 'title' }, e.name, ' ', h('span', { class: 'muted' }, e.key), ' ', statusBadge(e.status)),
    e.description ? h('p', {}, e.description) : null,
    h('div', { class: 'toolbar' }, actions,
      h('button', { type: 'button', 'data-testid': 'refresh', onclick: () => route() }, 'Refresh'),
      h('label', {}, auto, ` refresh every ${REFRESH_MS / 1000} s`)),
    h('h2', {}, 'Variants'),
    variantsTable(e, results),
    h('p', { class: 'muted', 'data-testid': 'traffic' }, `Traffic: ${fmtPercent(e.traffic)} of users.`),
    allocationFor(e),
    body);
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

// ---- routing: "#/" the list, "#/new" a new experiment, "#/experiments/KEY" one experiment ----

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
      await showExperiment(decodeURIComponent(m[1]), { quiet, current: () => mine === routing });
    } else if (location.hash === '#/new') {
      showNewExperiment();
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
    if (el('banner').dataset.keepFor !== location.hash) showBanner('');
    route();
  });
  route();
}

main();
