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
} as const;
export const CREATED_BY = 'claude-bottle';

export function resourceNames(identity: string) {
  return {
    internalNetwork: `cb-${identity}-internal`,
    egressNetwork: `cb-${identity}-egress`,
    gatewayContainer: `cb-${identity}-gateway`,
    agentContainer: `cb-${identity}-agent`,
  };
}

export function bottleLabels(identity: string, agent: string, role: string): Record<string, string> {
  return {
    [LABELS.createdBy]: CREATED_BY,
    [LABELS.identity]: identity,
    [LABELS.agent]: agent,
    [LABELS.role]: role,
  };
}

/** Credential routes are keyed by position in the plan; the gateway's secrets file uses the same ids. */
export function routeId(index: number): string {
  return `route-${index}`;
}
