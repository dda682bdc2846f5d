// Sign-in with GitHub in Debian's Chromium. GitHub itself cannot be reached from the tests, so a
// server on loopback answers as GitHub's documented OAuth endpoints do — an authorize page with an
// "Authorize" button, `/login/oauth/access_token` (a refused code answered 200 with an `error`
// field, as GitHub does), `/user/emails`, `/user` — and checks what GitHub checks: the client
// secret, the redirect URI, a code used once, the PKCE verifier against its S256 challenge.
// A member signs in from the prompt's button and lands signed in with their role; a stranger's
// account comes back to the sign-in page with the reason. Screenshot: sign-in-github-1440.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { adminApi, cleanup, freePort, launchBrowser, shots, startServer, tempDir } from './harness.mjs';

const CLIENT = 'Iv1.otafleet-e2e';
const SECRET = 'github-e2e-secret';
const ACCOUNTS = {
  octocat: [{ email: 'octo@lab.test', primary: true, verified: true }],
  stranger: [{ email: 'stranger@lab.test', primary: true, verified: true }],
};
let dir, server, github, browser, page;
/** Who is signed in at "GitHub" in this browser. */
let current = 'octocat';

/** The stand-in for github.com and api.github.com on one loopback port. */
async function startGitHub(port) {
  const grants = new Map();
  const tokens = new Map();
  const srv = createServer(async (req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const json = (status, body) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    if (url.pathname === '/login/oauth/authorize' && req.method === 'GET') {
      const q = url.searchParams;
      assert.equal(q.get('client_id'), CLIENT);
      assert.equal(q.get('scope'), 'user:email');
      assert.equal(q.get('code_challenge_method'), 'S256');
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>Authorize otafleet</title><form method="post" action="/login/oauth/authorize?${q}">
        <p>Signed in as ${current}</p><button type="submit">Authorize</button></form>`);
      return;
    }
    if (url.pathname === '/login/oauth/authorize' && req.method === 'POST') {
      const q = url.searchParams;
      const code = randomBytes(10).toString('hex');
      grants.set(code, { login: current, challenge: q.get('code_challenge'), redirect: q.get('redirect_uri') });
      res.writeHead(302, { location: `${q.get('redirect_uri')}?code=${code}&state=${encodeURIComponent(q.get('state'))}` });
      res.end();
      return;
    }
    if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const f = new URLSearchParams(body);
      const basic = (req.headers.authorization ?? '').replace(/^Basic /, '');
      const [id, secret] = basic ? Buffer.from(basic, 'base64').toString().split(':') : [f.get('client_id'), f.get('client_secret')];
      if (id !== CLIENT || secret !== SECRET) return json(200, { error: 'incorrect_client_credentials' });
      const grant = grants.get(f.get('code'));
      grants.delete(f.get('code'));
      const challenge = createHash('sha256').update(f.get('code_verifier') ?? '').digest('base64url');
      if (!grant || grant.challenge !== challenge || grant.redirect !== f.get('redirect_uri')) {
        return json(200, { error: 'bad_verification_code' });
      }
      const token = `gho_${randomBytes(10).toString('hex')}`;
      tokens.set(token, grant.login);
      return json(200, { access_token: token, token_type: 'bearer', scope: 'user:email' });
    }
    const login = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    if (!req.headers['user-agent']) return json(403, { message: 'a User-Agent is required' });
    if (url.pathname === '/api/user/emails' && login) return json(200, ACCOUNTS[login]);
    if (url.pathname === '/api/user' && login) return json(200, { login, name: null });
    json(404, { message: 'Not Found' });
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${port}`, stop: () => new Promise((r) => srv.close(r)) };
}

before(async () => {
  dir = tempDir();
  mkdirSync(shots, { recursive: true });
  const port = await freePort();
  github = await startGitHub(port);
  server = await startServer(join(dir, 'data'), { extraArgs: ['--github-client-id', CLIENT, '--github-client-secret', SECRET,
    '--github-url', github.base, '--github-api-url', `${github.base}/api`] });
  await adminApi(server.base).post('/api/v1/members', { email: 'octo@lab.test', role: 'operator' });
  browser = await launchBrowser(join(dir, 'chromium-profile'), { width: 1440, height: 900 });
  page = await browser.newPage();
});

after(async () => {
  await browser?.close();
  await github?.stop();
  await server?.stop();
  if (dir) cleanup(dir);
});

test('a member signs in with GitHub from the prompt and lands signed in with their role', async () => {
  await page.goto(`${server.base}/devices`);
  await page.getByTestId('sign-in-github').waitFor();
  await page.screenshot({ path: join(shots, 'sign-in-github-1440.png'), animations: 'disabled' });
  await page.getByTestId('sign-in-github').filter({ hasText: 'Sign in with GitHub' }).click();
  await page.waitForURL((u) => u.href.startsWith(github.base));
  await page.getByText('Signed in as octocat').waitFor();
  await page.getByRole('button', { name: 'Authorize' }).click();
  await page.waitForURL((u) => u.href.startsWith(server.base));
  await page.getByTestId('whoami').filter({ hasText: 'octo@lab.test' }).waitFor();
  assert.match(await page.getByTestId('whoami').innerText(), /operator/);
  assert.equal(new URL(page.url()).pathname, '/devices', 'back where the sign-in began');
  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in-github').waitFor();
});

test("a GitHub account that is not a member comes back to the sign-in page with the reason", async () => {
  current = 'stranger';
  await page.goto(server.base);
  await page.getByTestId('sign-in-github').click();
  await page.getByRole('button', { name: 'Authorize' }).click();
  await page.waitForURL((u) => u.href.startsWith(server.base));
  const note = page.getByTestId('sign-in-error');
  await note.waitFor();
  assert.equal(await note.getAttribute('data-code'), 'not_a_member');
  assert.match(await note.innerText(), /stranger@lab\.test|member/i);
  assert.equal(await page.getByTestId('whoami').count(), 0);
});
