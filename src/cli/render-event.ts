import type { LifecycleEvent } from '../events/schema.js';
import { capabilityTarget, type CapabilityRequest } from '../shared/capability.js';
import { terminalSafeJson, visibleText } from '../shared/visible-text.js';
import type { TrafficSummary } from '../shared/traffic-summary.js';

/**
 * One human line per lifecycle event, for `start` progress, `events` text output and the dashboard.
 * Event data can carry what the agent wrote (a reason, a host, an error it caused), so the whole
 * line is made visible, not just the fields known today to be agent-controlled.
 */
export function describeEvent(ev: LifecycleEvent, identity: string): string {
  return visibleText(describeRaw(ev, identity));
}

function describeRaw(ev: LifecycleEvent, identity: string): string {
  // Any event's data, read field by field: a field an event lacks shows as undefined.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each case reads its own event's fields
  const d = ev.data as Record<string, any>;
  switch (ev.type) {
    case 'bottle.start_requested': {
      const plan = d.plan as { agent?: string; bottle?: string } | undefined;
      return `start requested (agent ${plan?.agent}, bottle ${plan?.bottle})`;
    }
    case 'bottle.resume_requested':
      return 'resume requested';
    case 'bottle.prepared':
      return `state prepared (${d.state_dir})`;
    case 'build.egress': {
      const verb = d.decision === 'denied' ? 'refused' : String(d.decision);
      return `image build of ${d.image}: ${verb} ${d.method} ${d.host}:${d.port} (${d.reason})`;
    }
    case 'image.built':
      return `image ready ${d.tag}${d.cached ? ' (cached)' : ''}`;
    case 'network.created':
      return `networks ${d.internal} (internal) and ${d.egress} (egress)`;
    case 'gateway.started':
      return `gateway container started at ${d.ip}`;
    case 'gateway.ready':
      return `gateway enforcing the allowlist${d.interception_ca ? ' (interception CA published)' : ''}`;
    case 'pipelock.started':
      return `pipelock started at ${d.ip}`;
    case 'netwatch.started':
      return 'network watch attached: direct connections are refused and recorded';
    case 'netwatch.skipped':
      return `network watch not attached: ${d.reason}`;
    case 'agent.started':
      return `agent running under ${d.runtime}`;
    case 'agent.exited':
      return `agent exited with code ${d.code}${d.signal ? ` (${d.signal})` : ''}`;
    case 'sidecar.exited':
      return (
        `${d.role === 'netwatch' ? 'network watch' : 'gateway'} ${d.container} exited with code ${d.code}` +
        `${d.signal ? ` (${d.signal})` : ''}: enforcement lost, stopping the agent`
      );
    case 'bottle.stop_requested':
      return `stop requested by ${d.by}`;
    case 'transcript.snapshotted':
      return d.missing
        ? `transcript not found (${d.warning ?? 'nothing to snapshot'})`
        : `transcript snapshotted (${d.files} files, ${d.bytes} bytes)${skippedFiles(d)}`;
    case 'bottle.preserved':
      return `state preserved (${d.reason}); resume with: ${d.resume_hint ?? `bottle resume ${identity}`}`;
    case 'bottle.cleaned':
      return 'cleaned up (state removed)';
    case 'capability.requested':
      return (
        `capability requested ${d.request_id}: ${capabilityTarget(d as CapabilityRequest)} — ${d.reason}; ` +
        `decide with: bottle approve ${identity} / bottle deny ${identity} --reason ...`
      );
    case 'capability.approved':
      return `capability ${d.request_id} approved by ${d.by}`;
    case 'capability.denied':
      return `capability ${d.request_id} denied by ${d.by}: ${d.reason}`;
    case 'egress.granted':
      return d.live ? `${d.entry} allowed in the running gateway (kept for resumes)` : `${d.entry} kept for resumes`;
    case 'capability.answered':
      return `the agent was ${d.delivered ? '' : 'not '}told that ${d.request_id} is ${d.decision}`;
    case 'egress.allowed':
      return `egress allowed ${d.method} ${d.host}:${d.port}`;
    case 'egress.denied':
    case 'egress.audited': {
      const found = foundDetail(d.detail as EgressFound | undefined);
      return `egress ${ev.type.slice(7)} ${d.method} ${d.host}:${d.port} (${d.reason})${found}`;
    }
    case 'egress.summary':
      return trafficSummary(d as TrafficSummary);
    case 'agent.attention':
      return `the agent needs you (${d.kind}): ${d.message}`;
    case 'agent.working':
      return 'the agent is working again';
    case 'effect.failed':
      return `${d.effect} failed (attempt ${d.attempt}${d.permanent ? ', permanent' : ', will retry'}): ${d.error}`;
    case 'bottle.failed':
      return `bottle failed in ${d.effect}: ${d.error}`;
    case 'usage.recorded':
      return `usage recorded ${describeUsage(d.models as Record<string, ModelCounts>)}`;
    case 'budget.raised':
      return `budget raised by ${d.add} (by ${d.by})`;
    case 'budget.applied':
      return d.live
        ? `the running gateway enforces the budget limit ${d.limit}`
        : `budget limit ${d.limit} kept for resumes`;
    case 'bottle.discard_requested':
      return `discard requested by ${d.by}`;
    case 'bottle.discarded': {
      const images = (d as { images: string[] }).images;
      return `discarded (state removed${images.length > 0 ? `; images removed: ${images.join(', ')}` : ''})`;
    }
    case 'port.published':
      return `port ${d.address}:${d.host_port} published -> bottle port ${d.bottle_port}`;
    case 'port.publish_failed':
      return `port ${d.address}:${d.host_port} not published: ${d.error}`;
    case 'port.unpublished':
      return `host port ${d.host_port} closed`;
    default:
      return (ev as { type: string }).type;
  }
}

type ModelCounts = { calls: number; input: number; output: number };

/** "claude-sonnet-4-5: 3 calls, 1200 in / 340 out" per model. */
function describeUsage(models: Record<string, ModelCounts>): string {
  return Object.entries(models)
    .map(([model, u]) => `${model}: ${u.calls} call${u.calls === 1 ? '' : 's'}, ${u.input} in / ${u.output} out`)
    .join('; ');
}

export function eventJsonLine(ev: LifecycleEvent): string {
  return terminalSafeJson({ seq: ev.seq, type: ev.type, at: ev.at, data: ev.data, v: ev.v });
}

/** The files a transcript snapshot left out for its limit, named (the event keeps the first few), the rest counted. */
function skippedFiles(d: {
  skipped?: { path: string; bytes: number }[];
  skipped_count?: number;
  limit_bytes?: number;
}) {
  if (!d.skipped_count) return '';
  const named = (d.skipped ?? []).map((f) => `${f.path} (${f.bytes} bytes)`);
  const more = d.skipped_count - named.length;
  const list = [...named, ...(more > 0 ? [`${more} more`] : [])].join(', ');
  return `; skipped ${d.skipped_count} over the ${d.limit_bytes} bytes limit: ${list}`;
}

/** What inspection found, by class, rule and place; the fingerprint names the secret without showing it. */
type EgressFound = { class: string; rule: string; where: string; fingerprint?: string };
function foundDetail(detail: EgressFound | undefined) {
  if (!detail) return '';
  return ` [${detail.class} ${detail.rule} in ${detail.where}${detail.fingerprint ? ` fp ${detail.fingerprint}` : ''}]`;
}

/** A summary names its first hosts with their counts; `bottle egress` shows them all. */
function trafficSummary(d: TrafficSummary): string {
  const named = d.hosts.slice(0, 3).map((h) => `${h.host} ${h.allowed}/${h.denied}`);
  const more = d.hosts.length - named.length + d.pending;
  return `traffic (allowed/denied since the gateway started): ${named.join(', ')}${more > 0 ? `, ${more} more` : ''}`;
}
