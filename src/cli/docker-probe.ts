import type Docker from 'dockerode';
import type { ContainerRuntime } from '../shared/runtime.js';

/**
 * The CLI's read-only questions to the local Docker daemon: its engine id, and
 * the runtime when no worker has said which it has. With attach.ts and doctor's
 * checks, the only places the CLI reaches Docker; dockerode loads only when asked.
 */
export async function localDocker(): Promise<Docker> {
  const { dockerClient } = await import('../effects/docker/client.js');
  return dockerClient();
}

/** The HTTP status of a Docker API error, if it has one. */
export async function dockerStatusOf(err: unknown): Promise<number | undefined> {
  const { statusOf } = await import('../effects/docker/client.js');
  return statusOf(err);
}

/** The local daemon's engine id; undefined when this machine reaches no Docker daemon. */
export async function localEngineId(): Promise<string | undefined> {
  try {
    const info = (await (await localDocker()).info()) as { ID?: string };
    return info.ID || undefined;
  } catch {
    return undefined;
  }
}

/** The local daemon's runtime, for a CLI with no live worker to ask. */
export async function localRuntime(): Promise<ContainerRuntime> {
  const { detectRuntime } = await import('../effects/docker/client.js');
  return detectRuntime(await localDocker());
}
