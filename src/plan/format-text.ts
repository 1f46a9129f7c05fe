import { DEFAULT_TRANSCRIPT_LIMIT, planLimits } from './default-limits.js';
import { formatBudgetAmount } from '../shared/budget.js';
import { describePidsEnforcement } from './pids-enforcement.js';
import { PACKAGE_HOSTS, planBuildHosts } from './build-hosts.js';
import type { BottlePlan, EgressEntry } from './schema.js';
import { formatPortSpec, isExposedAddress } from '../shared/port-spec.js';
import { parseHostPattern, patternMatches } from '../shared/host-pattern.js';
import { grantScopeText } from '../shared/capability.js';

/** Says so when an ssh entry's host cannot be reached because its port 22 is not allowed. */
function sshReach(plan: Pick<BottlePlan, 'hosts'>, host: string): string {
  const name = host.toLowerCase();
  const allowed = plan.hosts.some((h) => patternMatches(parseHostPattern(h), name, 22, 'connect'));
  if (/[*?]/.test(host) || allowed) return '';
  return `; add "${name}:22" to egress.allow to reach it`;
}

/** The plan for people: what will run, where, and what it can reach. */
export function formatPlanText(plan: BottlePlan): string {
  const lines: string[] = [];
  const field = (label: string, value: string) => lines.push(`${`${label}:`.padEnd(14)}${value}`);
  const list = (label: string, items: string[]) => {
    field(label, items.length === 0 ? '(none)' : String(items.length));
    for (const item of items) lines.push(`  - ${item}`);
  };
  const defaults = new Set(plan.default_hosts);

  field('agent', plan.agent);
  field('bottle', plan.bottle);
  field('identity', plan.identity);
  field('image', `${plan.image.tag} (${plan.image.builtin ? 'built-in' : plan.image.dockerfile})`);
  field('gateway', plan.gateway_image.tag);
  field('host', plan.host);
  field('backend', plan.backend ?? 'docker');
  field(
    'runtime',
    plan.runtime === 'runsc' ? 'runsc (gVisor)' : (plan.runtime_note ?? 'runc (gVisor not registered with the daemon)'),
  );
  field('networks', `${plan.networks.internal} (internal), ${plan.networks.egress} (egress)`);
  field(
    'direct IP',
    plan.containers.netwatch
      ? `refused and recorded by the network watch (${plan.containers.netwatch})`
      : 'refused, not recorded (planned before the network watch)',
  );
  field('cwd', `${plan.cwd} (${plan.copy_cwd ? 'copied in' : 'bind-mounted'})`);
  field('command', plan.command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' '));
  const proxy =
    plan.egress?.proxy === 'pipelock'
      ? `, enforced by pipelock${plan.egress.pipelock_image ? ` (${plan.egress.pipelock_image})` : ''}`
      : '';
  lines.push(`hosts:        ${plan.hosts.length} allowed${proxy}`);
  const entries = new Map((plan.egress_entries ?? []).map((e) => [e.host, e]));
  for (const h of plan.hosts) lines.push(`  - ${h}${defaults.has(h) ? '  (default)' : ''}${entryNote(entries.get(h))}`);
  const packageHosts = new Set(PACKAGE_HOSTS);
  const built = planBuildHosts(plan);
  lines.push(`build hosts:  ${built.length} allowed to image builds (through a build gateway)`);
  for (const h of built) lines.push(`  - ${h}${packageHosts.has(h) ? '  (packages)' : ''}`);
  list(
    'extra hosts',
    Object.entries(plan.extra_hosts).map(([name, addr]) => `${name} -> ${addr}`),
  );
  list(
    'mounts',
    plan.mounts.map((m) => `${m.purpose}: ${m.source} -> ${m.target} (${m.kind}${m.readonly ? ', read-only' : ''})`),
  );
  list('env', plan.env_names);
  list(
    'credentials',
    plan.credentials.map(
      (c) =>
        `${c.role ?? c.host} -> ${c.upstream ?? ''} ` +
        `(${c.auth}${c.header ? ` ${c.header}` : ''}, from ${c.token_source})`,
    ),
  );
  list(
    'ssh',
    plan.ssh.map((s) => `${s.Host}: key ${s.IdentityFile} (held by the gateway${sshReach(plan, s.Host)})`),
  );
  list(
    'skills',
    plan.skills.map((s) => `${s.name} (${s.source})`),
  );
  list(
    'ports',
    (plan.ports ?? []).map(
      (p) =>
        `${formatPortSpec(p)} (host ${p.address}:${p.host_port} -> bottle port ${p.bottle_port})` +
        (isExposedAddress(p.address) ? ` WARNING: reachable from other machines on ${p.address}` : ''),
    ),
  );
  const remoteHosts = (plan.remote_control_hosts ?? []).join(', ');
  lines.push(
    plan.remote_control
      ? `remote_control: true (would add ${remoteHosts}; refused at launch: it needs your real token in the bottle)`
      : 'remote_control: false',
  );
  field('prompt', plan.prompt ?? '(none)');
  // A plan made before limits had defaults carries nulls; the agent container fills them the same way.
  const limits = planLimits(plan.limits, plan.runtime);
  const defaulted = new Set([...(plan.limits.defaulted ?? []), ...(limits.defaulted ?? [])]);
  const limit = (name: 'memory' | 'cpus' | 'pids') =>
    `${name} ${limits[name]}${defaulted.has(name) ? ' (default)' : ''}`;
  const transcript = `transcript ${limits.transcript ?? `${DEFAULT_TRANSCRIPT_LIMIT} (default)`}`;
  field('limits', [limit('memory'), limit('cpus'), limit('pids'), transcript].join(', '));
  field('processes', describePidsEnforcement(limits.pids_enforcement));
  const budget = plan.limits.budget;
  field(
    'budget',
    budget
      ? `${formatBudgetAmount(budget.limit, budget.unit)} on the Messages API; calls are refused once it is spent`
      : 'none',
  );
  return `${lines.join('\n')}\n`;
}

/** How the gateway treats one allowed host: not inspected (SNI checks only), and the rules it enforces. */
function entryNote(entry: EgressEntry | undefined): string {
  if (!entry) return '';
  const notes = [
    ...(entry.inspect ? [] : ['not inspected']),
    ...(entry.methods ? [`methods ${entry.methods.join(',')}`] : []),
    ...(entry.paths ? [`paths ${entry.paths.join(' ')}`] : []),
    ...(entry.grants ?? []).map((g) => `granted ${grantScopeText(g)}`),
  ];
  return notes.length > 0 ? `  (${notes.join('; ')})` : '';
}
