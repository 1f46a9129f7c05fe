import type Docker from 'dockerode';
import {
  AGENT_HOME,
  agentEnvironment,
  CA_BUNDLE_TARGET,
  GATEWAY_CA_TARGET,
  PROMPT_TARGET,
  SKILLS_TARGET_DIR,
  SSH_TARGET_DIR,
  SYSTEM_CA_BUNDLE,
  TRANSCRIPT_TARGET,
  interceptsTls,
} from '../plan/agent-env.js';
import type { NetworkLayout } from '../machines/context.js';
import { netwatchSentinel } from '../netwatch/protocol.js';
import { CLAUDE_GLOBAL_CONFIG_TARGET, CLAUDE_USER_SETTINGS_TARGET } from '../plan/claude-state.js';
import type { BottlePlan } from '../plan/schema.js';
import { hasSsh, withSshAgentBridge } from '../plan/ssh-config.js';
import { agentInitEntry, agentLaunch } from './docker/agent-init.js';
import { bottleRequestEntries } from './docker/bottle-request.js';
import { bottleStatusEntries } from './docker/bottle-status.js';
import { readContainerFile } from './docker/archive.js';
import { agentContainerSpec, ensureContainer, startContainer, startedAt } from './docker/containers.js';
import {
  claudeStateEntries,
  cwdEntries,
  promptEntries,
  putEntries,
  skillEntries,
  sshEntries,
  canaryEntries,
  transcriptEntries,
  trustEntries,
  type ArchiveEntry,
  type ProvisionTargets,
} from './docker/provision.js';
import { classifyDockerErrors, requireNetwork } from './errors.js';
import { pipelockAgentEnvironment } from './pipelock/agent-env.js';
import { usesPipelock } from './start-pipelock.js';
import { hasTranscript, stateLocations } from './state.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler } from './types.js';
import type { UploadedSources } from '../blobs/materialize.js';

const AGENT_TARGETS: ProvisionTargets = {
  home: AGENT_HOME,
  promptTarget: PROMPT_TARGET,
  skillsDir: SKILLS_TARGET_DIR,
  sshDir: SSH_TARGET_DIR,
  claudeDir: TRANSCRIPT_TARGET,
};

/** The agent's environment: its proxy is the gateway, or pipelock when that is the egress hop. */
function environmentFor(plan: BottlePlan, network: NetworkLayout): Record<string, string> {
  const hops = { gatewayIp: network.addresses.gateway, sentinel: netwatchSentinel(network.internal.subnet) };
  if (!usesPipelock(plan)) return agentEnvironment(plan, hops);
  return pipelockAgentEnvironment(plan, { ...hops, pipelockIp: network.addresses.pipelock });
}

/** Everything copied into the agent before it starts. */
async function provisioning(
  plan: BottlePlan,
  agent: Docker.Container,
  gatewayIp: string,
  uploads: UploadedSources,
): Promise<ArchiveEntry[]> {
  let entries: ArchiveEntry[] = [agentInitEntry()];
  if (plan.prompt) entries.push(...(await promptEntries(await uploads.local(plan.prompt, 'file'), AGENT_TARGETS)));
  const skills = await Promise.all(
    plan.skills.map(async (skill) => ({ name: skill.name, source: await uploads.local(skill.source, 'copy') })),
  );
  entries.push(...(await skillEntries(skills, AGENT_TARGETS)));
  entries.push(...sshEntries(plan.ssh, AGENT_TARGETS, gatewayIp));
  entries.push(...canaryEntries(plan.canaries, AGENT_TARGETS));
  // A resume restores the snapshot; so does a retried start that finds one (the folder only exists after a run).
  const restoredTranscript = hasTranscript(plan.identity) ? stateLocations(plan.identity).transcript : undefined;
  if (restoredTranscript) entries.push(...(await transcriptEntries(restoredTranscript, AGENT_TARGETS)));
  entries.push(...bottleRequestEntries(AGENT_TARGETS), ...bottleStatusEntries());
  const [shipped, shippedSettings] = await Promise.all([
    readContainerFile(agent, CLAUDE_GLOBAL_CONFIG_TARGET),
    readContainerFile(agent, CLAUDE_USER_SETTINGS_TARGET),
  ]);
  const claudeState = await claudeStateEntries(plan, {
    globalConfig: shipped?.toString('utf8'),
    settings: shippedSettings?.toString('utf8'),
    restoredTranscript,
  });
  // A merged file replaces the restored one of the same name.
  const merged = new Set(claudeState.filter((e) => e.type === 'file').map((e) => e.path));
  entries = [...entries.filter((e) => e.type === 'directory' || !merged.has(e.path)), ...claudeState];
  if (plan.copy_cwd) entries.push(...(await cwdEntries(await uploads.local(plan.cwd, 'copy'), plan.cwd)));
  return entries;
}

/**
 * A bind-mounted working folder is a path on the bottle's host, which its
 * daemon checks: a folder that exists only on the CLI's machine fails here.
 */
function missingBindSource(err: unknown, plan: BottlePlan): PermanentEffectError | undefined {
  // Docker's own words, kept as the detail of the refusal.
  const said = err instanceof PermanentEffectError ? `${err.message} ${err.detail ?? ''}` : String(err);
  if (!/bind source path does not exist/.test(said)) return undefined;
  return new PermanentEffectError(
    `the working folder ${plan.cwd} does not exist on host ${plan.host}, where the bottle runs ` +
      '(a bind-mounted working folder is a path on that host); create it there, or start with --copy-cwd',
  );
}

/**
 * start_agent: the hardened agent container at its fixed address, provisioned
 * and started. It may start before the gateway listens: its first program
 * (src/agent-init) holds the agent's command back until the proxy accepts.
 * With host credential routes the machine passes the gateway's CA, which the
 * agent is given to trust.
 */
export const startAgent =
  ({ docker }: EffectDeps): EffectHandler<'start_agent'> =>
  async (req, ctx) => {
    const { plan } = ctx;
    const network = requireNetwork(req.params.network);
    const imageLaunch = await classifyDockerErrors('inspecting the agent image', () =>
      agentLaunch(docker, plan.image.tag, plan.command),
    );
    const launch = hasSsh(plan) ? withSshAgentBridge(imageLaunch) : imageLaunch;
    const spec = agentContainerSpec(plan, { env: environmentFor(plan, network), network, launch });
    const agent = await classifyDockerErrors('creating the agent', () =>
      ensureContainer(docker, spec).catch((err: unknown) => {
        throw missingBindSource(err, plan) ?? err;
      }),
    );
    if (agent.status === 'created') {
      const entries = await provisioning(plan, agent.container, network.addresses.gateway, ctx.uploads);
      const ca = req.params.interception_ca;
      if (ca) {
        const systemBundle = await readContainerFile(agent.container, SYSTEM_CA_BUNDLE);
        const paths = { home: AGENT_HOME, caTarget: GATEWAY_CA_TARGET, bundleTarget: CA_BUNDLE_TARGET };
        entries.push(...trustEntries(ca, systemBundle, paths));
      } else if (interceptsTls(plan)) {
        throw new PermanentEffectError(
          'the gateway published no interception CA: the agent could not reach its host routes or inspected hosts',
        );
      }
      await classifyDockerErrors('provisioning the agent', () => putEntries(agent.container, entries));
      await classifyDockerErrors('starting the agent', () => startContainer(agent.container));
    }
    const data = {
      container: plan.containers.agent,
      runtime: plan.runtime,
      started_at: await startedAt(agent.container),
    };
    return [{ type: 'agent.started', data }];
  };
