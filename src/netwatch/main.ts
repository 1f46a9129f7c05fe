/**
 * Container entry point of the network watch (bundled to netwatch.cjs, run
 * from the gateway image in the agent's network namespace). As root with
 * CAP_NET_ADMIN it installs the refusal rules (rules.ts) and starts the
 * capture of what they refuse; then it gives up root and every capability and
 * only reads the capture and reports each attempt to the gateway. stdout
 * carries its one ready line; everything for humans goes to stderr.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import type { Readable } from 'node:stream';
import { attemptOf, nflogPayload, PcapRecords } from './nflog-capture.js';
import { NETWATCH_ENV, NETWATCH_READY_LINE, type DirectAttempt, type NetwatchSentinel } from './protocol.js';
import { DIRECT_RECORDS_PER_MINUTE, type NetwatchReport } from '../shared/netwatch-report.js';
import { TokenBucket } from '../shared/token-bucket.js';
import { RecentAttempts } from './recent-attempts.js';
import { captureArguments, CHAIN_CREATE, HOOK_CHECK, HOOK_INSERT, refusalRules, sentinelRule } from './rules.js';

/** The uid and gid the watch runs as once its rules and capture are in place. */
const NOBODY = 65534;
const CAPTURE_START_TIMEOUT_MS = 10_000;

class NetwatchError extends Error {}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new NetwatchError(`${name} is not set`);
  return value;
}

function iptables(args: readonly string[]): void {
  execFileSync('iptables', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function installRules(allowed: readonly string[]): void {
  try {
    iptables(CHAIN_CREATE);
  } catch {
    // A restarted watch finds its chain; the flush below empties it.
  }
  try {
    for (const rule of refusalRules(allowed)) iptables(rule);
    try {
      iptables(HOOK_CHECK);
    } catch {
      iptables(HOOK_INSERT);
    }
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new NetwatchError(`installing the refusal rules failed: ${stderr || (err as Error).message}`);
  }
}

type Capture = ChildProcessByStdio<null, Readable, Readable>;

/** Resolves once tcpdump says it is listening; its other diagnostics go to stderr. */
function startCapture(): Promise<Capture> {
  const capture = spawn('tcpdump', captureArguments(), { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new NetwatchError('the capture did not start in time')),
      CAPTURE_START_TIMEOUT_MS,
    );
    let pending = '';
    capture.stderr.setEncoding('utf8');
    capture.stderr.on('data', (text: string) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        process.stderr.write(`netwatch: tcpdump: ${line}\n`);
        if (/\blistening on /.test(line)) {
          clearTimeout(timer);
          resolve(capture);
        }
      }
    });
    capture.once('error', (err) => reject(new NetwatchError(`cannot run tcpdump: ${err.message}`)));
    capture.once('exit', (code, signal) =>
      reject(new NetwatchError(`tcpdump ended before it listened (${signal ?? `exit ${code}`})`)),
    );
  });
}

/** Root and every capability go: what is left reads a pipe and sends datagrams. */
function dropPrivileges(): void {
  if (!process.setgroups || !process.setgid || !process.setuid) throw new NetwatchError('cannot change user here');
  process.setgroups([]);
  process.setgid(NOBODY);
  process.setuid(NOBODY);
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (effective === undefined || BigInt(`0x${effective}`) !== 0n)
    throw new NetwatchError(`capabilities left after dropping root: ${effective ?? 'unknown'}`);
}

/** The agent's first program knocking before the sentinel's answer was in place: not an escape attempt. */
function isSentinel(attempt: DirectAttempt, sentinel: NetwatchSentinel): boolean {
  return attempt.protocol === 'tcp' && attempt.host === sentinel.host && attempt.port === sentinel.port;
}

function ipv4Address(name: string, value: string): { host: string; port: number } {
  const [host, port] = value.split(':');
  if (!isIPv4(host) || !/^\d{1,5}$/.test(port ?? ''))
    throw new NetwatchError(`${name} must be IPV4:PORT, got ${JSON.stringify(value)}`);
  return { host, port: Number(port) };
}

async function main(): Promise<void> {
  const allowed = required(NETWATCH_ENV.allow).split(',');
  if (!allowed.every((address) => isIPv4(address)))
    throw new NetwatchError(`${NETWATCH_ENV.allow} must list IPv4 addresses, got ${JSON.stringify(allowed.join(','))}`);
  const gateway = ipv4Address(NETWATCH_ENV.reportTo, required(NETWATCH_ENV.reportTo));
  const sentinel = ipv4Address(NETWATCH_ENV.sentinel, required(NETWATCH_ENV.sentinel));
  const token = required(NETWATCH_ENV.token);

  installRules(allowed);
  const capture = await startCapture();
  try {
    iptables(sentinelRule(sentinel));
  } catch (err) {
    throw new NetwatchError(`installing the sentinel's answer failed: ${(err as Error).message}`);
  }
  dropPrivileges();

  const socket = createSocket('udp4');
  socket.on('error', (err) => process.stderr.write(`netwatch: reporting: ${err.message}\n`));
  const records = new PcapRecords();
  // Retransmitted opening packets of one connection are one attempt.
  const recent = new RecentAttempts(10_000, 4096);
  // What the gateway would not record is not sent: a flood stays refused, and cheap.
  const budget = new TokenBucket(DIRECT_RECORDS_PER_MINUTE);
  capture.stdout.on('data', (chunk: Buffer) => {
    let completed: Buffer[];
    try {
      completed = records.push(chunk);
    } catch (err) {
      process.stderr.write(`netwatch: ${(err as Error).message}; stopping\n`);
      capture.kill();
      return;
    }
    for (const record of completed) {
      const payload = nflogPayload(record, records.isLittleEndian);
      const attempt = payload && attemptOf(payload);
      if (!attempt || isSentinel(attempt, sentinel)) continue;
      const key = `${attempt.protocol} ${attempt.sourcePort} ${attempt.host} ${attempt.port}`;
      if (!recent.isNew(key) || !budget.tryTake()) continue;
      const report: NetwatchReport = { token, protocol: attempt.protocol, host: attempt.host, port: attempt.port };
      socket.send(JSON.stringify(report), gateway.port, gateway.host);
    }
  });
  capture.on('exit', (code, signal) => {
    // The rules stay in the agent's namespace: attempts are still refused, only no longer recorded.
    process.stderr.write(`netwatch: the capture ended (${signal ?? `exit ${code}`}); attempts are not recorded\n`);
    process.exit(1);
  });
  const stop = () => {
    capture.kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`${NETWATCH_READY_LINE}\n`);
}

main().catch((err: unknown) => {
  const message = err instanceof NetwatchError ? err.message : `failed: ${(err as Error).message}`;
  process.stderr.write(`netwatch: ${message}\n`);
  process.exit(1);
});
