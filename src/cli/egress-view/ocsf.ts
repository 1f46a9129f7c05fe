import type { LifecycleEvent } from '../../events/schema.js';

/**
 * Egress decisions as OCSF records, for a SIEM (`bottle events <id> --format
 * ocsf`): HTTP Activity (class 4002) for a request with an HTTP method,
 * Network Activity (class 4001) for the rest (DNS lookups, direct
 * connections, requests refused before their method was read). The
 * decision maps to action/disposition/status; what inspection found maps to
 * the message and status detail, its fingerprint to an observable and to
 * `unmapped` — never the secret, which no event holds.
 */

export const OCSF_SCHEMA_VERSION = '1.4.0';
const CATEGORY_NETWORK = 4;
export const HTTP_ACTIVITY = 4002;
export const NETWORK_ACTIVITY = 4001;

/** HTTP Activity's activity_id per method; any other method is 99 (Other). */
const HTTP_ACTIVITY_IDS: Readonly<Record<string, [number, string]>> = {
  CONNECT: [1, 'Connect'],
  DELETE: [2, 'Delete'],
  GET: [3, 'Get'],
  HEAD: [4, 'Head'],
  OPTIONS: [5, 'Options'],
  POST: [6, 'Post'],
  PUT: [7, 'Put'],
  TRACE: [8, 'Trace'],
  PATCH: [9, 'Patch'],
};
/** Methods that are not HTTP: the gateway's names for a DNS lookup and a direct connection's protocol. */
const NOT_HTTP = new Set(['', 'DNS', 'TCP', 'UDP', 'ICMP', 'SCTP']);

type DecisionEvent = Extract<LifecycleEvent, { type: 'egress.allowed' | 'egress.denied' | 'egress.audited' }>;

export function isDecisionEvent(ev: LifecycleEvent): ev is DecisionEvent {
  return ev.type === 'egress.allowed' || ev.type === 'egress.denied' || ev.type === 'egress.audited';
}

interface Outcome {
  action: [number, string];
  disposition: [number, string];
  status: [number, string];
  severity: [number, string];
}

/** Secrets leaving are worse than a host off the allowlist; a decoy credential means something went looking. */
function outcome(ev: DecisionEvent): Outcome {
  const found = ev.data.detail?.class;
  if (ev.type === 'egress.allowed')
    return {
      action: [1, 'Allowed'],
      disposition: [1, 'Allowed'],
      status: [1, 'Success'],
      severity: [1, 'Informational'],
    };
  if (ev.type === 'egress.audited')
    return { action: [1, 'Allowed'], disposition: [17, 'Logged'], status: [1, 'Success'], severity: [3, 'Medium'] };
  const severity: [number, string] =
    found === 'canary' ? [5, 'Critical'] : found === 'known_secret' ? [4, 'High'] : [3, 'Medium'];
  return { action: [2, 'Denied'], disposition: [2, 'Blocked'], status: [2, 'Failure'], severity };
}

/** One decision event as an OCSF record; `product` is this claude-bottle's version. */
export function ocsfRecord(ev: DecisionEvent, identity: string, productVersion: string): Record<string, unknown> {
  const { host, port, method, reason, detail } = ev.data;
  const isHttp = !NOT_HTTP.has(method.toUpperCase());
  const [activityId, activityName] = isHttp
    ? (HTTP_ACTIVITY_IDS[method.toUpperCase()] ?? [99, 'Other'])
    : ev.type === 'egress.denied'
      ? [5, 'Refuse']
      : [6, 'Traffic'];
  const classUid = isHttp ? HTTP_ACTIVITY : NETWORK_ACTIVITY;
  const className = isHttp ? 'HTTP Activity' : 'Network Activity';
  const { action, disposition, status, severity } = outcome(ev);
  const decision = ev.type.slice('egress.'.length);
  const target = host ? `${host}:${port}` : 'an unreadable target';
  const found = detail ? `: ${detail.class} ${detail.rule} in the ${detail.where}` : '';
  return {
    category_uid: CATEGORY_NETWORK,
    category_name: 'Network Activity',
    class_uid: classUid,
    class_name: className,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: classUid * 100 + activityId,
    type_name: `${className}: ${activityName}`,
    time: Date.parse(ev.at),
    severity_id: severity[0],
    severity: severity[1],
    action_id: action[0],
    action: action[1],
    disposition_id: disposition[0],
    disposition: disposition[1],
    status_id: status[0],
    status: status[1],
    status_detail: reason,
    message: `egress ${decision} ${method || '(no method)'} ${target} (${reason})${found}`,
    ...(detail?.class === 'canary' ? { is_alert: true } : {}),
    metadata: {
      version: OCSF_SCHEMA_VERSION,
      product: { name: 'claude-bottle', vendor_name: 'claude-bottle', version: productVersion },
      uid: `${identity}/${ev.seq}`,
      log_name: 'egress',
    },
    src_endpoint: { name: identity },
    dst_endpoint: host ? { hostname: host, port } : { port },
    ...(isHttp ? { http_request: { http_method: method, url: { hostname: host, port } } } : {}),
    ...(detail?.fingerprint
      ? {
          observables: [
            { name: 'unmapped.claude_bottle.fingerprint', type_id: 99, type: 'Other', value: detail.fingerprint },
          ],
        }
      : {}),
    unmapped: {
      claude_bottle: {
        identity,
        seq: ev.seq,
        decision_number: ev.data.n,
        reason,
        ...(detail ? { class: detail.class, rule: detail.rule, where: detail.where } : {}),
        ...(detail?.fingerprint ? { fingerprint: detail.fingerprint } : {}),
      },
    },
  };
}
