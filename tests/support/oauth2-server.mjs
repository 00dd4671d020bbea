// The OAuth2 authorisation server of dmarc-warden's tests: the npm package oauth2-mock-server
// (signed JWTs; client-credentials, refresh-token and authorisation-code grants with PKCE), wrapped
// so that it behaves like a real one where the tests need it to:
//
// - only registered clients get tokens, and only with their secret (HTTP Basic or form fields);
// - a refresh token works once: each use returns a new one (rotation), and the old one is void;
// - tokens are introspected (RFC 7662, form POST, as Dovecot's oauth2 passdb asks): active only if
//   this server issued them and they have not been expired by the test; `username` names the
//   client's mailbox user;
// - the device authorisation grant (RFC 8628), which the package lacks: POST /device_authorization
//   answers a device and user code; the "user" approves by opening verification_uri_complete
//   (GET /device?user_code=…); until then the token endpoint says authorization_pending;
// - Microsoft-style paths /TENANT/oauth2/v2.0/{token,authorize,devicecode}, for known tenants only.
//
//   node oauth2-server.mjs HOST PATH-TO-oauth2-mock-server/dist/index.mjs
//
// Prints `listening PORT` once ready; exits when its standard input closes (the test process
// ended). Test control, JSON over HTTP:
//   POST /test/clients  {client_id, secret?, user, refresh_token?, ttl?, app?, refuse?}
//   GET  /test/clients/ID   -> {issued, refused (introspections that said inactive), refresh_token}
//   POST /test/expire   {client_id}   every token of that client becomes inactive
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const [host, modulePath] = process.argv.slice(2);
const { OAuth2Server } = await import(pathToFileURL(modulePath).href);

const TENANTS = new Set(['contoso']);
// Tokens stay valid this long past the lifetime they are announced with, so that what is tested is
// the client renewing them in time, not the clock.
const GRACE_MS = 120_000;

const clients = new Map();
const tokens = new Map();
const devices = new Map();

const mock = new OAuth2Server();
await mock.issuer.keys.generate('RS256');
const service = mock.service;

function credentials(req) {
  const auth = req.headers.authorization ?? '';
  if (auth.startsWith('Basic ')) {
    const text = Buffer.from(auth.slice(6), 'base64').toString();
    const i = text.indexOf(':');
    // RFC 6749 section 2.3.1: both parts are form-urlencoded first.
    const dec = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: dec(text.slice(0, i)), secret: dec(text.slice(i + 1)) };
  }
  return { id: req.body?.client_id, secret: req.body?.client_secret };
}

// Every token unique (as real servers make them): without a jti, two tokens issued in the same
// second with the same claims would be the same string.
service.on('beforeTokenSigning', (token) => {
  token.payload.jti = randomUUID();
});

service.on('beforeResponse', (response, req) => {
  const fail = (status, error, description) => {
    response.statusCode = status;
    response.body = { error, error_description: description };
  };
  if (response.statusCode !== 200) return;
  const { id, secret } = credentials(req);
  const client = clients.get(id);
  if (!client) return fail(401, 'invalid_client', `AADSTS700016: Application '${id}' was not found.`);
  if (client.secret !== undefined && client.secret !== secret) {
    return fail(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
  }
  const body = req.body;
  switch (body.grant_type) {
    case 'client_credentials':
      if (!client.app) return fail(400, 'unauthorized_client', 'not an app-only client');
      break;
    case 'refresh_token':
      if (!client.refresh_token || body.refresh_token !== client.refresh_token) {
        return fail(400, 'invalid_grant', 'AADSTS70000: The refresh token has expired or is invalid.');
      }
      client.refresh_token = randomUUID();
      response.body.refresh_token = client.refresh_token;
      break;
    case 'authorization_code':
      if (!body.code_verifier) return fail(400, 'invalid_grant', 'PKCE is required');
      client.refresh_token = randomUUID();
      response.body.refresh_token = client.refresh_token;
      break;
    default:
      return fail(400, 'unsupported_grant_type', body.grant_type);
  }
  response.body.expires_in = client.ttl;
  delete response.body.id_token;
  tokens.set(response.body.access_token, {
    client: id,
    user: client.user,
    until: client.refuse ? 0 : Date.now() + client.ttl * 1000 + GRACE_MS,
  });
  client.issued += 1;
});

// Checks the client of a token request like the hook above; returns an error body or null.
function clientError(req) {
  const { id, secret } = credentials(req);
  const client = clients.get(id);
  if (!client) return { error: 'invalid_client', error_description: `unknown client ${id}` };
  if (client.secret !== undefined && client.secret !== secret) {
    return { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' };
  }
  return null;
}

// The device-code grant of a token request whose form is `form`.
async function deviceToken(req, res, form) {
  const failed = clientError(req);
  if (failed) return json(res, 401, failed);
  const device = devices.get(form.device_code);
  if (!device || device.client !== credentials(req).id) {
    return json(res, 400, { error: 'expired_token', error_description: 'unknown device code' });
  }
  if (!device.approved) return json(res, 400, { error: 'authorization_pending' });
  devices.delete(form.device_code);
  const client = clients.get(device.client);
  const access = await mock.issuer.buildToken({
    scopesOrTransform: (_header, payload) => {
      payload.scope = device.scope;
      payload.jti = randomUUID();
    },
    expiresIn: client.ttl,
  });
  client.refresh_token = randomUUID();
  tokens.set(access, { client: device.client, user: client.user, until: Date.now() + client.ttl * 1000 + GRACE_MS });
  client.issued += 1;
  return json(res, 200, {
    access_token: access,
    token_type: 'Bearer',
    expires_in: client.ttl,
    refresh_token: client.refresh_token,
    scope: device.scope,
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString()));
    req.on('error', reject);
  });
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${host}`);
    const path = url.pathname;
    if (req.method === 'POST' && path === '/introspect') {
      const form = new URLSearchParams(await readBody(req));
      const token = tokens.get(form.get('token') ?? '');
      if (!token || token.until < Date.now()) {
        const client = token && clients.get(token.client);
        if (client) client.refused += 1;
        return json(res, 200, { active: false });
      }
      return json(res, 200, { active: true, username: token.user, client_id: token.client });
    }
    if (req.method === 'POST' && path === '/test/clients') {
      const c = JSON.parse(await readBody(req));
      clients.set(c.client_id, {
        secret: c.secret ?? undefined,
        user: c.user,
        refresh_token: c.refresh_token,
        ttl: c.ttl ?? 3600,
        app: c.app ?? false,
        refuse: c.refuse ?? false,
        issued: 0,
        refused: 0,
      });
      return json(res, 200, {});
    }
    if (req.method === 'GET' && path.startsWith('/test/clients/')) {
      const client = clients.get(decodeURIComponent(path.slice('/test/clients/'.length)));
      if (!client) return json(res, 404, {});
      return json(res, 200, {
        issued: client.issued,
        refused: client.refused,
        refresh_token: client.refresh_token ?? null,
      });
    }
    if (req.method === 'POST' && path === '/test/expire') {
      const { client_id } = JSON.parse(await readBody(req));
      for (const t of tokens.values()) if (t.client === client_id) t.until = 0;
      return json(res, 200, {});
    }
    let endpoint = path;
    const tenant = path.match(/^\/([^/]+)\/oauth2\/v2\.0\/(token|authorize|devicecode)$/);
    if (tenant) {
      if (!TENANTS.has(tenant[1])) {
        return json(res, 400, {
          error: 'invalid_request',
          error_description: `AADSTS90002: Tenant '${tenant[1]}' not found.`,
        });
      }
      endpoint = tenant[2] === 'devicecode' ? '/device_authorization' : `/${tenant[2]}`;
      req.url = `${endpoint}${url.search}`;
    }
    if (req.method === 'POST' && endpoint === '/device_authorization') {
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
      req.body = form;
      const failed = clientError(req);
      if (failed) return json(res, 401, failed);
      const code = { device: randomUUID(), user: randomUUID().slice(0, 8).toUpperCase() };
      devices.set(code.device, { client: credentials(req).id, user_code: code.user, scope: form.scope, approved: false });
      const verification = `http://${host}:${server.address().port}/device`;
      return json(res, 200, {
        device_code: code.device,
        user_code: code.user,
        verification_uri: verification,
        verification_uri_complete: `${verification}?user_code=${code.user}`,
        expires_in: 300,
        interval: 1,
      });
    }
    if (req.method === 'GET' && endpoint === '/device') {
      const wanted = url.searchParams.get('user_code');
      for (const d of devices.values()) {
        if (d.user_code === wanted) {
          d.approved = true;
          return json(res, 200, { approved: true });
        }
      }
      return json(res, 404, { approved: false });
    }
    if (req.method === 'POST' && endpoint === '/token') {
      // Read here, for the device grant the package does not know; handed on parsed otherwise
      // (body-parser leaves a request alone once `_body` is set).
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
      if (form.grant_type === 'urn:ietf:params:oauth:grant-type:device_code') {
        req.body = form;
        return deviceToken(req, res, form);
      }
      req.body = form;
      req._body = true;
    }
    service.requestHandler(req, res);
  } catch (e) {
    json(res, 500, { error: 'server_error', error_description: String(e) });
  }
});

server.listen(0, host, () => {
  mock.issuer.url = `http://${host}:${server.address().port}`;
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
