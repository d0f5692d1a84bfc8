// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a
// real `splitstream up`: started by tests/integration/browser_test.cc, which passes
//   SPLITSTREAM_TEST_BASE_URL   http://127.0.0.1:PORT of the API server
//   SPLITSTREAM_ADMIN_TOKEN, SPLITSTREAM_CLIENT_TOKEN
//   SPLITSTREAM_CHROMIUM        the browser (default /usr/bin/chromium)
//   SPLITSTREAM_TEST_ARTIFACTS  where screenshots of the results page and the filled-in form go, and on a failure a
//                               screenshot and the page's text
// It drives an experiment through the API, waits until its results show every user, and then
// checks what the page shows against what the API says. Exit 0 only when every check held.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const base = process.env.SPLITSTREAM_TEST_BASE_URL;
const admin = process.env.SPLITSTREAM_ADMIN_TOKEN;
const client = process.env.SPLITSTREAM_CLIENT_TOKEN;
const artifacts = process.env.SPLITSTREAM_TEST_ARTIFACTS || '/tmp/splitstream-browser-test';
assert.ok(base && admin && client, 'SPLITSTREAM_TEST_BASE_URL and both tokens must be set');

const KEY = 'checkout_button';
const DRAFT = 'draft_with_markup';
const STALE = 'changed_behind_the_page';
const HOSTILE = '<img src=x onerror="window.__xss=1"> & <b>bold</b>';
const USERS = 120;

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

const step = (name) => console.log(`-- ${name}`);

async function seed() {
  step('create three experiments and drive one through the API');
  await api('POST', '/v1/experiments', admin, {
    key: KEY,
    name: 'Checkout button',
    description: 'A green button against the grey one.',
    variants: [{ key: 'control', weight: 0.5 }, { key: 'green', weight: 0.5 }],
    traffic: 1,
    metrics: [
      { key: 'purchased', event_type: 'purchase', kind: 'conversion' },
      { key: 'revenue', event_type: 'purchase', kind: 'mean' },
    ],
  });
  await api('POST', '/v1/experiments', admin, {
    key: DRAFT,
    name: HOSTILE,
    variants: [{ key: 'a', weight: 1 }, { key: 'b', weight: 1 }],
    traffic: 1,
  });
  await api('POST', '/v1/experiments', admin, {
    key: STALE,
    variants: [{ key: 'a', weight: 1 }, { key: 'b', weight: 1 }],
    traffic: 1,
  });
  await api('POST', `/v1/experiments/${KEY}/start`, admin);
  const variantOf = new Map();
  for (let i = 0; i < USERS; i++) {
    const a = await api('POST', '/v1/assign', client, { experiment: KEY, user_id: `user-${i}` });
    assert.equal(a.in_experiment, true, `user-${i} not in the experiment: ${JSON.stringify(a)}`);
    variantOf.set(`user-${i}`, a.variant);
  }
  // Every user of green buys, one in four of control: a difference the page must call.
  const events = [];
  for (const [user, variant] of variantOf) {
    const i = Number(user.slice(5));
    if (variant === 'green' || i % 4 === 0) {
      events.push({ experiment: KEY, user_id: user, type: 'purchase', value: 10 + (i % 7) });
    }
  }
  await api('POST', '/v1/events', client, { events });
  return { variantOf, purchases: events.length };
}

async function awaitResults(purchases) {
  step('wait until ClickHouse has every user and purchase (the pipeline of splitstream up)');
  const deadline = Date.now() + 120_000;
  let last = null;
  while (Date.now() < deadline) {
    try {
      last = await api('GET', `/v1/experiments/${KEY}/results`, admin);
      const users = last.variants.reduce((n, v) => n + v.users, 0);
      const purchased = last.metrics[0].variants.reduce((n, v) => n + (v.value ?? 0), 0);
      if (users === USERS && purchased === purchases) return last;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`results did not catch up within 120 s; last answer: ${JSON.stringify(last)}`);
}

async function run(browser, results) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  try {
    step('the token comes from the fragment, which then leaves the address bar');
    await page.goto(`${base}/#token=${encodeURIComponent(admin)}`);
    await page.getByTestId('experiments').waitFor();
    assert.equal(new URL(page.url()).hash, '#/', 'the token stayed in the address bar');

    step('the list shows every experiment; a name with markup is text, not markup');
    const rows = page.getByTestId('experiment-row');
    assert.equal(await rows.count(), 3);
    const draftRow = page.locator(`[data-testid=experiment-row][data-key="${DRAFT}"]`);
    assert.equal(await draftRow.locator('td').nth(1).textContent(), HOSTILE);
    assert.equal(await draftRow.getByTestId('status').textContent(), 'draft');
    assert.equal(await page.locator('main img, main b').count(), 0, 'markup from the API was rendered');
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'markup from the API ran');

    step('one experiment: users per variant, SRM, freshness and verdicts as the API says');
    // The results answer is held back a second in the browser: the experiment shows first,
    // with a note that the results are being computed.
    const hold = async (r) => { await new Promise((ok) => setTimeout(ok, 1000)); await r.continue(); };
    await page.route('**/v1/experiments/*/results', hold);
    await page.getByRole('link', { name: KEY }).click();
    await page.getByTestId('results-loading').waitFor();
    assert.match(await page.getByTestId('title').textContent(), /Checkout button/);
    await page.getByTestId('metric').first().waitFor();
    assert.equal(await page.getByTestId('results-loading').count(), 0);
    await page.unroute('**/v1/experiments/*/results', hold);
    assert.match(await page.getByTestId('title').textContent(), /Checkout button/);
    for (const v of results.variants) {
      const cell = page.locator(`[data-testid=variant-row][data-variant="${v.key}"] [data-testid=users]`);
      assert.equal(await cell.textContent(), v.users.toLocaleString('en-US'), `users of ${v.key}`);
    }
    assert.match(await page.getByTestId('srm').textContent(), /Sample ratio/);
    assert.match(await page.getByTestId('freshness').textContent(), /^Data up to \d{4}-\d\d-\d\d /);
    const purchased = results.metrics.find((m) => m.key === 'purchased');
    const verdicts = await page.locator('[data-metric=purchased] [data-testid=verdict]').allTextContents();
    assert.deepEqual(verdicts, purchased.comparisons.map((c) => c.verdict));
    assert.match(verdicts[0], /green beats control on purchased/, 'a difference of 100 % against 25 % is called');
    for (const v of purchased.variants) {
      const cell = page.locator(`[data-metric=purchased] [data-testid=metric-row][data-variant="${v.key}"] [data-testid=value]`);
      assert.equal(await cell.textContent(), `${(v.mean * 100).toFixed(2)} %`, `rate of ${v.key}`);
    }
    assert.equal(await page.getByTestId('metric').count(), results.metrics.length);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}/dashboard-results.png`, fullPage: true });

    step('Stop stops the experiment (the API agrees)');
    await page.getByTestId('stop').click();
    await page.locator('h1 [data-testid=status]', { hasText: 'stopped' }).waitFor();
    assert.equal((await api('GET', `/v1/experiments/${KEY}`, admin)).status, 'stopped');
    assert.equal(await page.getByTestId('stop').count(), 0);

    step('a draft experiment without users says so and can be started');
    await page.goto(`${base}/#/experiments/${DRAFT}`);
    await page.getByTestId('no-users').waitFor();
    for (const v of ['a', 'b']) {
      const cell = page.locator(`[data-testid=variant-row][data-variant="${v}"] [data-testid=users]`);
      assert.equal(await cell.textContent(), '0', `users of ${v}`);
    }
    await page.getByTestId('start').click();
    await page.locator('h1 [data-testid=status]', { hasText: 'running' }).waitFor();
    assert.equal((await api('GET', `/v1/experiments/${DRAFT}`, admin)).status, 'running');

    step('a button whose action the API refuses says why, and the message stays');
    await page.goto(`${base}/#/experiments/${STALE}`);
    await page.getByTestId('start').waitFor();
    // Behind the page's back: started and stopped, which a stopped experiment cannot undo.
    await api('POST', `/v1/experiments/${STALE}/start`, admin);
    await api('POST', `/v1/experiments/${STALE}/stop`, admin);
    await page.getByTestId('start').click();
    await page.locator('h1 [data-testid=status]', { hasText: 'stopped' }).waitFor();
    assert.match(await page.locator('#banner.error').textContent(), new RegExp(`^Could not start ${STALE}: `));
    problems.length = 0;  // the refused POST is on the console, as it should be

    step('the form creates and starts an experiment as the API then reads it back');
    await page.goto(`${base}/#/`);
    await page.getByTestId('new').click();
    await page.getByTestId('new-form').waitFor();
    assert.equal(await page.locator('#banner').isVisible(), false, "the last page's message went with it");
    await page.getByTestId('field-key').fill('from_the_form');
    await page.getByTestId('field-name').fill('Made in the browser');
    await page.getByTestId('field-traffic').fill('0.5');
    await page.getByTestId('field-variant-key').nth(1).fill('green');
    await page.getByTestId('add-variant').click();
    await page.getByTestId('field-variant-key').nth(2).fill('blue');
    await page.getByTestId('field-variant-weight').nth(2).fill('2');
    await page.getByTestId('add-metric').click();
    await page.getByTestId('field-metric-key').nth(0).fill('bought');
    await page.getByTestId('field-metric-event').nth(0).fill('purchase');
    await page.getByTestId('add-metric').click();
    await page.getByTestId('field-metric-key').nth(1).fill('slow_pages');
    await page.getByTestId('field-metric-event').nth(1).fill('page_load');
    await page.getByTestId('field-metric-kind').nth(1).selectOption('quantile');
    await page.getByTestId('field-metric-quantile').nth(1).fill('0.95');
    await page.getByTestId('field-metric-window').nth(1).fill('24');
    await page.getByTestId('field-metric-higher').nth(1).uncheck();
    await page.getByTestId('field-metric-guardrail').nth(1).check();
    await page.getByTestId('field-start-now').check();
    await page.screenshot({ path: `${artifacts}/dashboard-new.png`, fullPage: true });
    await page.getByTestId('create').click();
    await page.locator('h1 [data-testid=status]', { hasText: 'running' }).waitFor();
    assert.match(await page.getByTestId('title').textContent(), /Made in the browser/);
    assert.equal(await page.locator('#banner.info').textContent(), 'Experiment from_the_form created and started.');
    const made = await api('GET', '/v1/experiments/from_the_form', admin);
    assert.equal(made.status, 'running');
    assert.equal(made.traffic, 0.5);
    assert.deepEqual(made.variants.map((v) => [v.key, v.weight]), [['control', 1], ['green', 1], ['blue', 2]]);
    assert.deepEqual(await page.getByTestId('weight').allTextContents(), ['25.00 %', '25.00 %', '50.00 %']);
    assert.deepEqual(made.metrics.map((m) => [m.key, m.event_type, m.kind]),
                     [['bought', 'purchase', 'conversion'], ['slow_pages', 'page_load', 'quantile']]);
    assert.equal(made.metrics[1].quantile, 0.95);
    assert.equal(made.metrics[1].window_hours, 24);
    assert.equal(made.metrics[1].higher_is_better, false);
    assert.equal(made.metrics[1].guardrail, true);
    assert.equal(made.metrics[0].higher_is_better, true);

    step('traffic and weights change through the page (PATCH), as the API then reads them');
    // Opened and typed into while the results are still on their way: the form and what was
    // typed must survive their arrival.
    await page.route('**/v1/experiments/*/results', hold);
    await page.reload();
    await page.getByTestId('results-loading').waitFor();
    await page.locator('[data-testid=allocation] summary').click();
    await page.getByTestId('field-alloc-traffic').fill('0.8');
    await page.getByTestId('no-users').waitFor();
    await page.unroute('**/v1/experiments/*/results', hold);
    assert.equal(await page.getByTestId('field-alloc-traffic').inputValue(), '0.8');
    await page.locator('[data-testid=field-alloc-weight][data-variant=blue]').fill('1');
    await page.getByTestId('save-allocation').click();
    await page.locator('[data-testid=traffic]', { hasText: '80.00 %' }).waitFor();
    const ramped = await api('GET', '/v1/experiments/from_the_form', admin);
    assert.equal(ramped.traffic, 0.8);
    assert.deepEqual(ramped.variants.map((v) => v.weight), [1, 1, 1]);
    assert.match(await page.locator('#banner.info').textContent(), /^Allocation of from_the_form saved/);
    assert.deepEqual(await page.getByTestId('weight').allTextContents(), ['33.33 %', '33.33 %', '33.33 %']);

    // Until here nothing failed; the steps below fail requests on purpose, which the
    // browser reports on its console.
    assert.deepEqual(problems, [], 'the page logged errors (a CSP violation shows up here)');

    step('auto-refresh shows a change made elsewhere without a click');
    await page.goto(`${base}/?refresh=1#/experiments/${DRAFT}`);
    await page.locator('h1 [data-testid=status]', { hasText: 'running' }).waitFor();
    assert.match(await page.locator('label', { has: page.getByTestId('auto-refresh') }).textContent(), /refresh every 1 s/);
    await page.getByTestId('auto-refresh').check();
    await api('POST', `/v1/experiments/${DRAFT}/stop`, admin);
    await page.locator('h1 [data-testid=status]', { hasText: 'stopped' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('auto-refresh').isChecked(), true, 'auto-refresh stays on');
    await page.getByTestId('auto-refresh').uncheck();

    step('an unknown experiment is an error that names it');
    await page.goto(`${base}/#/experiments/no_such_experiment`);
    await page.locator('#banner.error').waitFor();
    assert.match(await page.locator('#banner').textContent(), /no_such_experiment/);

    step('the form shows what the API refused, and nothing is created');
    await page.goto(`${base}/#/new`);
    await page.getByTestId('field-key').fill('Not a key!');
    await page.getByTestId('create').click();
    await page.locator('#banner.error').waitFor();
    assert.match(await page.locator('#banner').textContent(), /^Not created: .*\(key\)$/);
    assert.equal((await api('GET', '/v1/experiments', admin)).experiments.length, 4);
    await page.getByTestId('new-form').waitFor();  // the form stays, as filled in

    step('a wrong token is refused with the reason, and the page asks for the token again');
    const other = await browser.newContext();
    const p2 = await other.newPage();
    await p2.goto(`${base}/#token=wrong-token`);
    await p2.locator('#token-form').waitFor({ state: 'visible' });
    assert.match(await p2.locator('#banner').textContent(), /token was refused: unknown bearer token/);
    await p2.fill('#token-input', admin);
    await p2.click('#token-form button');
    await p2.getByTestId('experiments').waitFor();
    await other.close();
    assert.deepEqual(problems.filter((p) => !/status of (400|404)/.test(p)), [], 'unexpected errors on the page');
  } catch (e) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}/dashboard-failure.png`, fullPage: true }).catch(() => {});
    writeFileSync(`${artifacts}/dashboard-failure.txt`,
                  `${page.url()}\n${await page.locator('body').innerText().catch(() => '')}\n${problems.join('\n')}\n`);
    console.error(`page state saved in ${artifacts}; console: ${JSON.stringify(problems)}`);
    throw e;
  } finally {
    await context.close();
  }
}

const { purchases } = await seed();
const results = await awaitResults(purchases);
const browser = await chromium.launch({
  executablePath: process.env.SPLITSTREAM_CHROMIUM || '/usr/bin/chromium',
  // As root in a container, without the network: no sandbox, no background connections.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  await run(browser, results);
} finally {
  await browser.close();
}
console.log('dashboard: every check passed');
