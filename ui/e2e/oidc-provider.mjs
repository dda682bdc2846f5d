// A real OpenID Provider for the sign-in tests: the certified `oidc-provider` package (pinned in
// package.json), on 127.0.0.1:<port>, with one confidential client, PKCE required, its signing
// key read from a JWK file (so a test restarts it with another key to rotate keys), and the
// package's development login page, which signs in whatever login is typed (the e-mail address
// is the login itself). Prints "oidc-provider ready" once listening.
//
//   node oidc-provider.mjs <port> <jwk-file> <client-id> <client-secret> <redirect-uri>
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, keyFile, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [JSON.parse(readFileSync(keyFile, 'utf8'))] },
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The e-mail comes in the ID token itself, not only from userinfo.
  conformIdTokenClaims: false,
  cookies: { keys: ['otafleet-test-provider'] },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: id, email_verified: true, name: id.split('@')[0] }),
  }),
  features: { devInteractions: { enabled: true } },
});
const server = provider.listen(Number(port), '127.0.0.1', () => console.log('oidc-provider ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
