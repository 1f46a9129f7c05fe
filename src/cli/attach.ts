import type Docker from 'dockerode';

/**
 * Attaches the user's terminal to the agent container: raw mode, window
 * size, Ctrl-C delivered to the agent (raw mode sends the byte, the TTY in
 * the container turns it into SIGINT), Docker's detach keys (Ctrl-P Ctrl-Q)
 * leave the bottle running. The one direct Docker use of the CLI.
 */
export const DETACH_KEYS = 'ctrl-p,ctrl-q';

/** The Docker client, loaded only when a terminal is attached or output streamed. */
async function docker(): Promise<Docker> {
  const { default: Dockerode } = await import('dockerode');
  return new Dockerode();
}

/** `onAttached` runs once keystrokes reach the agent, so a notice printed there is never ahead of raw mode. */
export async function attachTerminal(containerName: string, onAttached: () => void): Promise<'exited' | 'detached'> {
  const container = (await docker()).getContainer(containerName);
  const stream = (await container.attach({
    stream: true,
    stdin: true,
    stdout: true,
    stderr: true,
    hijack: true,
    detachKeys: DETACH_KEYS,
  })) as NodeJS.ReadWriteStream;

  const stdin = process.stdin;
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  const resize = () => {
    if (process.stdout.columns && process.stdout.rows) {
      container.resize({ h: process.stdout.rows, w: process.stdout.columns }).catch(() => undefined);
    }
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  stdin.pipe(stream);
  stream.pipe(process.stdout);
  process.stdout.on('resize', resize);
  resize();
  onAttached();

  try {
    await new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
  } finally {
    process.stdout.off('resize', resize);
    stdin.unpipe(stream);
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
    stdin.pause();
  }
  const info = await container.inspect().catch(() => undefined);
  return info?.State?.Running ? 'detached' : 'exited';
}

/** Without a terminal, the agent's output still reaches the user. */
export async function streamOutput(containerName: string): Promise<void> {
  const c = (await docker()).getContainer(containerName);
  let stream: NodeJS.ReadableStream;
  try {
    stream = (await c.logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream;
  } catch (err) {
    // An agent that exited at once may already be torn down; its exit is in the event log.
    if ((err as { statusCode?: number }).statusCode === 404) return;
    throw err;
  }
  stream.pipe(process.stdout, { end: false });
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
}
