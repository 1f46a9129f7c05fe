/**
 * Paths in a plan that name the bottle's state folder on its worker's host.
 * The CLI does not know where that folder is (the worker's home may differ
 * from the CLI's), so the plan names them by these markers and the worker's
 * effects resolve them to their own state folder. Plans recorded before the
 * markers carry absolute paths; the effects still take those.
 */
export const STATE_DOCKERFILE = 'state:Dockerfile';
export const STATE_TRANSCRIPT = 'state:transcript';

/**
 * The content of the bottle's own Dockerfile for an approved request's body.
 * The CLI hashes this same text from the log, so both agree on the image tag.
 */
export function stateDockerfileText(body: string): string {
  return body.endsWith('\n') ? body : `${body}\n`;
}
