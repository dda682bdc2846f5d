// Sign-in through a real OpenID provider (the certified `oidc-provider` package, started by this
// test on loopback) in Debian's Chromium: a member signs in and out; a forged state, a replayed
// answer, a replayed code, a tampered nonce, a sign-in finished in another browser and a removed
// membership are refused with the reason on the sign-in page and no session; a rotation of the
// provider's signing key is followed. Screenshots: sign-in-1440.png, sign-in-refused-1440.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  adminApi, cleanup, freePort, launchBrowser, shots, signingKey, startOidcProvider, startServer, tempDir,
} from './harness.mjs';

const CLIENT = 'otafleet-e2e';
const CLIENT_SECRET = 'e2e-client-secret';
let dir, server, provider, providerPort, browser, page, api;

async function provide(keyName) {
  const key = await signingKey(dir, keyName);
  provider = await startOidcProvider({ port: providerPort, keyFile: key.path, clientId: CLIENT, clientSecret: CLIENT_SECRET,
    redirectUri: `${server.base}/api/v1/auth/oidc/callback` });
  return key;
}

before(async () => {
  dir = tempDir();
  mkdirSync(shots, { recursive: true });
  providerPort = await freePort();
  server = await startServer(join(dir, 'data'), { extraArgs: ['--oidc-issuer', `http://127.0.0.1:${providerPort}`,
    '--oidc-client-id', CLIENT, '--oidc-client-secret', CLIENT_SECRET, '--oidc-label', 'Lab ID', '--local-accounts'] });
  await provide('k1');
  api = adminApi(server.base);
  await api.post('/api/v1/members', { email: 'alice@lab.test', role: 'operator' });
  browser = await launchBrowser(join(dir, 'chromium-profile'), { width: 1440, height: 900 });
  // Nothing leaves the machine (the provider's page asks for a web font).
  await browser.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (r) => r.abort());
  page = await browser.newPage();
});

after(async () => {
  await browser?.close();
  await provider?.stop();
  await server?.stop();
  if (dir) cleanup(dir);
});

/** At the provider: type the login (it is the e-mail address) and consent, whichever of its
 *  pages come (a provider that remembers the person skips them); back at otafleet when done. */
async function atProvider(login) {
  for (let i = 0; i < 6 && page.url().startsWith(provider.issuer); i++) {
    const form = page.locator('input[name=login]');
    const consent = page.getByRole('button', { name: 'Continue' });
    await Promise.race([form.waitFor(), consent.waitFor(), page.waitForURL((u) => u.href.startsWith(server.base))]).catch(() => {});
    if (!page.url().startsWith(provider.issuer)) break;
    if (await form.count()) {
      await form.fill(login);
      await page.locator('input[name=password]').fill('anything');
      await page.getByRole('button', { name: 'Sign-in' }).click();
    } else if (await consent.count()) {
      await consent.click();
    }
    await page.waitForLoadState();
  }
  await page.waitForURL((u) => u.href.startsWith(server.base));
}

async function signIn(login) {
  await page.goto(server.base);
  await page.getByTestId('sign-in').click();
  await atProvider(login);
}

/** Requests to the callback, and to the provider's authorization endpoint (for interception). */
const toCallback = (u) => u.href.startsWith(server.base) && u.pathname === '/api/v1/auth/oidc/callback';
const toProviderAuth = (u) => u.href.startsWith(provider.issuer) && u.pathname === '/auth';

/** The reason the sign-in page shows for a refused sign-in. */
async function refusal() {
  const note = page.getByTestId('sign-in-error');
  try {
    await note.waitFor({ timeout: 10_000 });
  } catch (e) {
    throw new Error(`no refusal shown at ${page.url()}: ${(await page.locator('body').innerText()).slice(0, 400)}\n${server.log().slice(-1500)}`);
  }
  return note.getAttribute('data-code');
}

async function sessionCookie() {
  return (await browser.cookies(server.base)).find((c) => c.name === 'otafleet_session')?.value ?? null;
}

async function meWith(cookie) {
  return fetch(`${server.base}/api/v1/me`, { headers: { cookie: `otafleet_session=${cookie}` } });
}

test('a member signs in with the provider, works with their role, and signs out', async () => {
  await page.goto(server.base);
  await page.getByTestId('sign-in').filter({ hasText: 'Sign in with Lab ID' }).waitFor();
  await page.screenshot({ path: join(shots, 'sign-in-1440.png') });
  await page.getByTestId('sign-in').click();
  await atProvider('alice@lab.test');
  await page.getByTestId('whoami').filter({ hasText: 'alice@lab.test · operator' }).waitFor();
  const cookie = await sessionCookie();
  assert.ok(cookie, 'a session cookie');
  const jar = (await browser.cookies(server.base)).find((c) => c.name === 'otafleet_session');
  assert.equal(jar.httpOnly, true);
  assert.equal(jar.sameSite, 'Lax');
  // A change goes through with the session (the UI sends its CSRF token): an operator's.
  await page.getByRole('link', { name: 'Projects' }).click();
  await page.getByLabel('New project name').fill('signed-in');
  await page.getByRole('button', { name: 'Add project' }).click();
  await page.locator('[data-testid=project-row][data-name="signed-in"]').waitFor();
  const audit = await api.get('/api/v1/audit?action=create_project');
  assert.equal(audit[0].actor, 'user:alice@lab.test');
  // The same cookie from another site's form, without the token: refused.
  const forged = await fetch(`${server.base}/api/v1/projects`, { method: 'POST',
    headers: { cookie: `otafleet_session=${cookie}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'csrf' }) });
  assert.equal(forged.status, 403);
  assert.equal((await forged.json()).error.code, 'csrf_failed');

  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in').waitFor();
  assert.equal(await sessionCookie(), null);
  const after = await meWith(cookie);
  assert.equal(after.status, 401);
  assert.equal((await after.json()).error.code, 'session_ended');
});

// The refusals are driven over HTTP, as an attacker would send them: a browser follows the
// provider's redirect to the callback by itself (an interception cannot hold it back), so these
// take the answer before it is delivered and deliver it changed.

/** Begin a sign-in as a browser would (its own cookie jar; cookies ignore ports, so one jar holds
 *  otafleet's and the provider's), sign in at the provider's pages as `login`, and stop at the
 *  provider's answer — the callback URL with a fresh code and state — without delivering it.
 *  `nonce`: sent to the provider instead of the sign-in's own. */
async function answerFromProvider(login, { nonce } = {}) {
  const jar = new Map();
  const go = async (url, init = {}) => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const at = pair.indexOf('=');
      const [k, v] = [pair.slice(0, at).trim(), pair.slice(at + 1)];
      if (v === '' || /max-age=0/i.test(c)) jar.delete(k);
      else jar.set(k, v);
    }
    return res;
  };
  let res = await go(`${server.base}/api/v1/auth/oidc/login`);
  assert.equal(res.status, 302);
  let url = res.headers.get('location');
  const binding = jar.get('otafleet_sign_in');
  if (nonce) {
    const u = new URL(url);
    u.searchParams.set('nonce', nonce);
    url = u.href;
  }
  for (let i = 0; i < 12; i++) {
    if (url.startsWith(`${server.base}/api/v1/auth/oidc/callback`)) return { answer: url, binding };
    res = await go(url);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url).href;
      continue;
    }
    const html = await res.text();
    const action = new URL(html.match(/<form[^>]*action="([^"]+)"/)[1].replaceAll('&amp;', '&'), url).href;
    const prompt = html.match(/name="prompt" value="(\w+)"/)[1];
    const form = prompt === 'login' ? { prompt, login, password: 'anything' } : { prompt };
    res = await go(action, { method: 'POST', body: new URLSearchParams(form),
      headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    url = new URL(res.headers.get('location'), action).href;
  }
  throw new Error('the provider never answered');
}

/** Deliver an answer to otafleet's callback (with the sign-in's browser cookie, or none): the
 *  refusal code it sends the browser back with, or null, and the session cookie it set, if any. */
async function deliver(answer, binding, change = {}) {
  const u = new URL(answer);
  for (const [k, v] of Object.entries(change)) u.searchParams.set(k, v);
  const res = await fetch(u, { redirect: 'manual', headers: binding ? { cookie: `otafleet_sign_in=${binding}` } : {} });
  assert.equal(res.status, 303);
  const to = new URL(res.headers.get('location'), server.base);
  const session = res.headers.getSetCookie().find((c) => c.startsWith('otafleet_session=') && !c.startsWith('otafleet_session=;'));
  return { refused: to.searchParams.get('signin_error'), session: session?.split(';')[0].split('=')[1] ?? null };
}

test("the provider's answer, delivered as it came, opens a session over HTTP too", async () => {
  const { answer, binding } = await answerFromProvider('alice@lab.test');
  const { refused, session } = await deliver(answer, binding);
  assert.equal(refused, null);
  assert.equal((await meWith(session)).status, 200);
});

test('a forged state opens no session', async () => {
  const { answer, binding } = await answerFromProvider('alice@lab.test');
  assert.deepEqual(await deliver(answer, binding, { state: 'forged-state' }), { refused: 'signin_state_unknown', session: null });
});

test('a replayed answer and a replayed code open no session', async () => {
  const first = await answerFromProvider('alice@lab.test');
  assert.equal((await deliver(first.answer, first.binding)).refused, null);
  // The same answer again: its sign-in was used.
  assert.deepEqual(await deliver(first.answer, first.binding), { refused: 'signin_state_unknown', session: null });
  // The used code with a fresh sign-in's state and browser: the provider refuses the code.
  const fresh = await answerFromProvider('alice@lab.test');
  const code = new URL(first.answer).searchParams.get('code');
  assert.deepEqual(await deliver(fresh.answer, fresh.binding, { code }), { refused: 'oidc_code_refused', session: null });
});

test('an ID token issued for another nonce opens no session', async () => {
  const { answer, binding } = await answerFromProvider('alice@lab.test', { nonce: 'a-nonce-otafleet-never-made' });
  assert.deepEqual(await deliver(answer, binding), { refused: 'oidc_nonce', session: null });
});

test('a sign-in finished in another browser than the one that began it opens no session', async () => {
  // Begun by an attacker, delivered by the victim's browser (which has not the attacker's
  // sign-in cookie): that would sign the victim in as the attacker.
  const { answer } = await answerFromProvider('alice@lab.test');
  assert.deepEqual(await deliver(answer, null), { refused: 'signin_other_browser', session: null });
});

test('a refused sign-in shows its reason on the sign-in page', async () => {
  const { answer, binding } = await answerFromProvider('alice@lab.test', { nonce: 'another' });
  const res = await fetch(answer, { redirect: 'manual', headers: { cookie: `otafleet_sign_in=${binding}` } });
  await page.goto(new URL(res.headers.get('location'), server.base).href);
  assert.equal(await refusal(), 'oidc_nonce');
  assert.match(await page.getByTestId('sign-in-error').innerText(), /wrong nonce/);
  assert.equal(new URL(page.url()).search, '', 'the reason is taken out of the address');
  await page.screenshot({ path: join(shots, 'sign-in-refused-1440.png') });
});

test('after the provider rotates its signing key, sign-in fetches the new key and works', async () => {
  // This otafleet has the first key: a sign-in before the rotation fetched it.
  await provider.stop();
  await provide('k2');
  await signIn('alice@lab.test');
  await page.getByTestId('whoami').filter({ hasText: 'alice@lab.test' }).waitFor();
  assert.match(server.log(), /metadata and keys fetched.*refetched=true|refetched=true.*metadata and keys fetched/);
  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in').waitFor();
});

test('a removed member is signed out at once and cannot sign in again; a stranger never', async () => {
  await signIn('alice@lab.test');
  await page.getByTestId('whoami').filter({ hasText: 'alice@lab.test' }).waitFor();
  const cookie = await sessionCookie();
  const [alice] = (await api.get('/api/v1/members')).filter((m) => m.email === 'alice@lab.test');
  const res = await fetch(`${server.base}/api/v1/members/${alice.id}`, { method: 'DELETE', headers: { authorization: 'Bearer e2e-admin-token' } });
  assert.equal(res.status, 204);
  assert.equal((await meWith(cookie)).status, 401);
  await page.reload();
  await page.getByTestId('sign-in').waitFor();
  await page.getByTestId('sign-in').click();
  await atProvider('alice@lab.test');
  assert.equal(await refusal(), 'not_a_member');
  // The dead cookie was dropped when the server refused it.
  assert.equal(await sessionCookie(), null);

  await page.getByTestId('sign-in').click();
  await atProvider('mallory@elsewhere.test');
  assert.equal(await refusal(), 'not_a_member');
});

test('with local accounts, a member the admin gave a password signs in with it', async () => {
  const bob = await api.post('/api/v1/members', { email: 'bob@lab.test', role: 'viewer' });
  const res = await fetch(`${server.base}/api/v1/members/${bob.id}/password`, { method: 'PUT',
    headers: { authorization: 'Bearer e2e-admin-token', 'content-type': 'application/json' },
    body: JSON.stringify({ password: 'a long lab passphrase' }) });
  assert.equal(res.status, 200);
  await page.goto(server.base);
  await page.getByLabel('E-mail').fill('bob@lab.test');
  await page.getByLabel('Password', { exact: true }).fill('not the passphrase');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  assert.equal(await refusal(), 'bad_credentials');
  await page.getByLabel('Password', { exact: true }).fill('a long lab passphrase');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('whoami').filter({ hasText: 'bob@lab.test · viewer' }).waitFor();
  await page.getByTestId('sign-out').click();
  await page.getByLabel('E-mail').waitFor();
});
