// Drives the npm openid-client (6.x) against UIAS for TestOIDCWithOpenIDClient.
//   node oidc-client.mjs authurl  ISSUER CLIENT_ID SECRET REDIRECT_URI
//     prints {"url", "verifier", "state", "nonce"}
//   node oidc-client.mjs callback ISSUER CLIENT_ID SECRET CALLBACK_URL VERIFIER STATE NONCE
//     redeems the code, checks the ID token, reads userinfo, refreshes,
//     introspects, revokes and introspects again; prints what it saw.
// OIDC_CLIENT_DIR is where scripts/oidc-client.sh installed the package.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const client = await import(pathToFileURL(join(process.env.OIDC_CLIENT_DIR, 'node_modules', 'openid-client', 'build', 'index.js')).href);
const [mode, issuer, clientId, secret, ...rest] = process.argv.slice(2);
// The test's edge is plain HTTP on loopback.
const config = await client.discovery(new URL(issuer), clientId, secret, undefined, { execute: [client.allowInsecureRequests] });

if (mode === 'authurl') {
  const [redirectUri] = rest;
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid profile groups', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  console.log(JSON.stringify({ url: url.href, verifier, state, nonce }));
} else if (mode === 'callback') {
  const [callback, verifier, state, nonce] = rest;
  const tokens = await client.authorizationCodeGrant(config, new URL(callback),
    { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const active = await client.tokenIntrospection(config, refreshed.access_token);
  await client.tokenRevocation(config, refreshed.access_token);
  const revoked = await client.tokenIntrospection(config, refreshed.access_token);
  let replay = 'accepted';
  try {
    await client.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  } catch (e) {
    replay = e.error || e.code || String(e);
  }
  console.log(JSON.stringify({
    sub: claims.sub, login: claims.preferred_username, name: claims.name, aud: claims.aud, nonce: claims.nonce,
    userinfoSub: userinfo.sub, refreshedSub: refreshed.claims()?.sub, active: active.active, activeSub: active.sub,
    revokedActive: revoked.active, replay,
  }));
} else {
  throw new Error('mode: authurl or callback');
}
