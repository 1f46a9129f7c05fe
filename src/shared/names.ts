/**
 * Deterministic Docker resource names and labels for one bottle. Every effect
 * derives names from here so that inspect-before-create and teardown agree.
 */
export const LABEL_PREFIX = 'dev.claude-bottle';
export const LABELS = {
  createdBy: `${LABEL_PREFIX}.created-by`,
  identity: `${LABEL_PREFIX}.identity`,
  agent: `${LABEL_PREFIX}.agent`,
  role: `${LABEL_PREFIX}.role`,
  contextHash: `${LABEL_PREFIX}.context-hash`,
  /** Which event store (Redis) owns the bottle: `cleanup` only judges its own store's resources. */
  store: `${LABEL_PREFIX}.store`,
} as const;
export const CREATED_BY = 'claude-bottle';

export function resourceNames(identity: string) {
  return {
    internalNetwork: `cb-${identity}-internal`,
    egressNetwork: `cb-${identity}-egress`,
    gatewayContainer: `cb-${identity}-gateway`,
    agentContainer: `cb-${identity}-agent`,
    netwatchContainer: `cb-${identity}-netwatch`,
  };
}

/** The forwarder container that publishes one host port of a bottle (src/port-forwarder). */
export function portForwarderName(identity: string, hostPort: number): string {
  return `cb-${identity}-port-${hostPort}`;
}

/**
 * A worker serves exactly one event store; it records that store's id here
 * once at start so every resource it creates says which store owns it. Two
 * users (or test runs) sharing a Docker daemon with different Redis servers
 * then never mistake each other's live bottles for orphans.
 */
let currentStore: string | undefined;
export function setStoreLabel(storeId: string): void {
  currentStore = storeId;
}

export function bottleLabels(identity: string, agent: string, role: string): Record<string, string> {
  return {
    [LABELS.createdBy]: CREATED_BY,
    [LABELS.identity]: identity,
    [LABELS.agent]: agent,
    [LABELS.role]: role,
    ...(currentStore ? { [LABELS.store]: currentStore } : {}),
  };
}

/** Credential routes are keyed by position in the plan; the gateway's secrets file uses the same ids. */
export function routeId(index: number): string {
  return `route-${index}`;
}
