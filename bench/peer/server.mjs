// Benchmark peer: panva/oidc-provider v9 configured to match Latchkey's benchmark setup
// as closely as oidc-provider allows. Run: PORT=3001 node server.mjs   (issuer http://127.0.0.1:PORT)
//
// How this maps to Latchkey (what is the same, and what can't be):
// - Endpoint paths are renamed to Latchkey's (/authorize /token /introspect /revoke /userinfo
//   /jwks.json), so a load script can use the same URLs for both servers. Discovery is at
//   /.well-known/openid-configuration on both.
// - Clients, secret, grant types, scopes and redirect URI are the same as Latchkey's bench
//   config. Client auth is client_secret_basic. Latchkey stores a hash of the secret and caches
//   checks it has already done; oidc-provider compares the plain secret in constant time.
// - Keys: one RSA-2048, one P-256 and one Ed25519 key, generated at startup (Latchkey keeps
//   its keys in its store).
// - client_credentials: access tokens are RFC 9068 JWTs (typ at+jwt) signed with RS256 / ES256
//   / EdDSA depending on the client, as Latchkey's access_token_signed_response_alg does. Here
//   that goes through the resource-indicators feature: every bench-* client is given the
//   default resource urn:bench:api, whose format is 'jwt' and whose signing alg depends on the
//   client. Lifetime 600 s (Latchkey's access_token_ttl).
// - Code flow (bench-web): PKCE S256, remembered consent (loadExistingGrant below grants
//   openid profile email offline_access, plus the API resource, with no consent page), id_token
//   RS256, refresh tokens rotated on every use (rotateRefreshToken: true). Code 60 s, access and
//   id tokens 600 s, refresh 30 days, as in Latchkey's defaults.
//   * Latchkey's code-flow access token is a JWT that also works at /userinfo. oidc-provider only
//     accepts *opaque* tokens at userinfo, and issues a JWT only for a resource. So:
//     - code+PKCE exchange and refresh scenarios: the authorize request carries
//       resource=urn:bench:api (added by bench/lib for the peer), and useGrantedResource=true makes
//       /token return an RS256 JWT access token + RS256 id_token + refresh token: the same
//       signing work as Latchkey.
//     - userinfo and introspection scenarios: the token comes from a code flow *without*
//       resource, so it is opaque (looked up in the store), the only kind oidc-provider accepts
//       there. (oidc-provider also refuses to introspect JWT access tokens.)
// - Logged-in user: the interaction URL is /bench-login/:uid. GET shows a minimal form; POST
//   (username, password) checks the argon2id hash and finishes the login interaction, which sets
//   the _session cookie. This plays the part of Latchkey's login page (GET /authorize -> login
//   page -> POST /login -> back to /authorize -> code). After it, GET /authorize with the session
//   cookie redirects straight to the redirect_uri with a code (no page).
// - Password logins: oidc-provider has no password grant and no password storage. The bench
//   logs in through the login page above on both servers; the password check is argon2id with
//   Latchkey's parameters (m=19456 KiB, t=2, p=1). An unknown user is checked against a dummy
//   hash, as Latchkey does. No lockout throttle here.
// - Storage: an in-memory adapter (below; oidc-provider's bundled one is unfit for load).
//   Latchkey persists to SQLite or Postgres, so it does more work per write: an advantage of
//   the peer.
// - bench-rs (resource server): confidential, may call /introspect (only it may) and /revoke.
//
// Dependencies: oidc-provider 9, argon2 (prebuilt binaries ship inside the npm package).

import http from 'node:http';
import crypto from 'node:crypto';
import querystring from 'node:querystring';

import Provider, { errors } from 'oidc-provider';
import argon2 from 'argon2';

const PORT = Number(process.env.PORT || 3001);
const HOST = process.env.HOST || '127.0.0.1';
const ISSUER = `http://127.0.0.1:${PORT}`;
const SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuv';
const API = 'urn:bench:api';
const WEB_SCOPE = 'openid profile email offline_access';
const REDIRECT_URI = 'http://127.0.0.1:9999/cb';
const QUIET = process.env.PEER_QUIET !== '0';

// --- keys -------------------------------------------------------------------------------
function jwk(type, opts, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, opts);
  const key = privateKey.export({ format: 'jwk' });
  return { ...key, alg, use: 'sig', kid: `bench-${alg.toLowerCase()}` };
}
// RS256 first: it is the default for id_tokens.
const keys = [
  jwk('rsa', { modulusLength: 2048 }, 'RS256'),
  jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  jwk('ed25519', {}, 'EdDSA'),
];

// --- accounts ---------------------------------------------------------------------------
const ARGON2 = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const BENCH_HASH = await argon2.hash('bench-password', ARGON2);
const users = new Map([
  ['bench', {
    hash: BENCH_HASH,
    claims: { sub: 'bench', name: 'Bench User', email: 'bench@example.test', email_verified: true },
  }],
]);
// bench1..bench63: one account per concurrent login loop (bench/drive.py), with bench's
// password and hash, as in latchkey-bench.toml (Latchkey checks one password at a time per
// account; the peer has no such throttle, but both servers get the same logins).
for (let i = 1; i < 64; i += 1) users.set(`bench${i}`, { hash: BENCH_HASH, claims: { sub: `bench${i}` } });
const DUMMY_HASH = await argon2.hash(crypto.randomBytes(16).toString('hex'), ARGON2);

async function checkPassword(username, password) {
  const user = users.get(String(username ?? '').trim().toLowerCase());
  const ok = await argon2.verify(user ? user.hash : DUMMY_HASH, String(password ?? ''));
  return ok && user ? user : null;
}

async function findAccount(_ctx, id) {
  const user = users.get(id);
  if (!user) return undefined;
  return { accountId: id, claims: async () => ({ ...user.claims }) };
}

// --- storage ----------------------------------------------------------------------------
// oidc-provider's bundled memory adapter is an LRU capped at 1000 entries (a benchmark run
// would evict the logged-in session and live tokens mid-run) and rescans all of a grant's
// tokens on every write (quadratic when thousands of codes and refresh tokens share the one
// remembered grant). This unbounded Map with a grant index and expiry is what a real adapter
// (Redis, SQL with an index on grant_id) does, kept in memory.
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);
const store = new Map(); // "Model:id" -> { payload, expiresAt (ms) }
const byGrant = new Map(); // grantId -> Set of "Model:id"
const sessionByUid = new Map(); // session uid -> session id

function drop(key) {
  const entry = store.get(key);
  if (!entry) return;
  store.delete(key);
  const { payload } = entry;
  if (payload.grantId) byGrant.get(payload.grantId)?.delete(key);
  if (key.startsWith('Session:') && sessionByUid.get(payload.uid) === key.slice(8)) {
    sessionByUid.delete(payload.uid);
  }
}

setInterval(() => {
  const now = Date.now();
  for (const [key, { expiresAt }] of store) if (expiresAt <= now) drop(key);
  for (const [grantId, keys] of byGrant) if (keys.size === 0) byGrant.delete(grantId);
}, 30_000).unref();

class BenchAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(key, { payload, expiresAt });
    if (this.model === 'Session') sessionByUid.set(payload.uid, id);
    if (payload.grantId && GRANTABLE.has(this.model)) {
      let keys = byGrant.get(payload.grantId);
      if (!keys) byGrant.set(payload.grantId, (keys = new Set()));
      keys.add(key);
    }
  }

  async find(id) {
    const key = this.key(id);
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      drop(key);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    const id = sessionByUid.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode() { return undefined; }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { drop(this.key(id)); }

  async revokeByGrantId(grantId) {
    const keys = byGrant.get(grantId);
    if (!keys) return;
    byGrant.delete(grantId);
    for (const key of keys) drop(key);
  }
}

// --- clients ----------------------------------------------------------------------------
const ccAlg = { 'bench-rs256': 'RS256', 'bench-es256': 'ES256', 'bench-eddsa': 'EdDSA' };
const clients = [
  ...Object.keys(ccAlg).map((client_id) => ({
    client_id,
    client_secret: SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api.read',
  })),
  {
    client_id: 'bench-web',
    client_secret: SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    scope: WEB_SCOPE,
    id_token_signed_response_alg: 'RS256',
  },
  {
    client_id: 'bench-rs',
    client_secret: SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  },
];

// --- provider ---------------------------------------------------------------------------
const configuration = {
  adapter: BenchAdapter,
  clients,
  jwks: { keys },
  findAccount,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  routes: {
    authorization: '/authorize',
    introspection: '/introspect',
    revocation: '/revoke',
    userinfo: '/userinfo',
    jwks: '/jwks.json',
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'api.read'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  pkce: { required: () => true }, // v9 only supports S256
  rotateRefreshToken: true,
  // oidc-provider drops offline_access unless prompt=consent is sent (OIDC Core 11); Latchkey
  // grants it with remembered consent. Issuing the refresh token for any code grant of a client
  // allowed the refresh_token grant (and not tying it to the browser session) is the equivalent.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: 600,
    ClientCredentials: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    RefreshToken: 30 * 86400,
    Grant: 30 * 86400,
    Session: 7 * 86400,
    Interaction: 15 * 60,
  },
  interactions: { url: (_ctx, interaction) => `/bench-login/${interaction.uid}` },
  // Remembered consent: bench-web is pre-approved for its scopes and the API resource.
  async loadExistingGrant(ctx) {
    const { client, session, provider } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    let grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (client.clientId !== 'bench-web') return grant;
    if (grant && grant.accountId === session.accountId) {
      const ok = WEB_SCOPE.split(' ').every((s) => grant.openid?.scope?.split(' ').includes(s))
        && grant.resources?.[API] === WEB_SCOPE;
      if (ok) return grant;
    } else {
      grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    }
    grant.addOIDCScope(WEB_SCOPE);
    grant.addResourceScope(API, WEB_SCOPE);
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (_ctx, client) => client.clientId === 'bench-rs',
    },
    revocation: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => client.clientId === 'bench-rs' || token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // client_credentials clients get the API resource when they name none; bench-web asks
      // for it explicitly (without it, its token is the opaque userinfo kind).
      defaultResource: async (_ctx, client, oneOf) => oneOf || (ccAlg[client.clientId] ? API : undefined),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource, client) => {
        if (resource !== API) throw new errors.InvalidTarget();
        const web = client.clientId === 'bench-web';
        return {
          scope: web ? WEB_SCOPE : 'api.read',
          audience: API,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: ccAlg[client.clientId] || 'RS256' } },
        };
      },
    },
  },
};

const provider = new Provider(ISSUER, configuration);
if (QUIET) {
  // oidc-provider prints configuration advice once; keep benchmark logs clean.
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
}
const oidc = provider.callback();

// --- the few routes of our own ----------------------------------------------------------
function readForm(req, limit = 8192) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
      if (body.length > limit) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(querystring.parse(body)));
    req.on('error', reject);
  });
}

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function benchRoutes(req, res) {
  const url = req.url.split('?')[0];
  const m = /^\/bench-login\/([\w-]+)$/.exec(url);
  if (m) {
    // Throws (-> 400) unless the interaction cookies match this uid.
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== m[1]) return send(res, 400, '{"error":"interaction mismatch"}');
    if (req.method === 'GET') {
      return send(res, 200, `<!doctype html><form method="post" action="/bench-login/${details.uid}">`
        + '<input name="username"><input name="password" type="password"><button>Sign in</button></form>',
      'text/html; charset=utf-8');
    }
    if (req.method === 'POST') {
      const form = await readForm(req);
      const user = await checkPassword(form.username, form.password);
      if (!user) return send(res, 401, '{"error":"invalid_credentials"}');
      return provider.interactionFinished(req, res, {
        login: { accountId: user.claims.sub, amr: ['pwd'] },
      }, { mergeWithLastSubmission: false });
    }
  }
  return false;
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/bench-')) {
    benchRoutes(req, res).then((handled) => {
      if (handled === false) send(res, 404, '{"error":"not_found"}');
    }).catch((err) => {
      if (!res.headersSent) send(res, 400, JSON.stringify({ error: String(err.message || err) }));
      else res.end();
    });
    return;
  }
  oidc(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(PORT, HOST, () => {
  console.log(`oidc-provider ${process.env.npm_package_dependencies_oidc_provider || 'v9'} peer listening on ${ISSUER}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
