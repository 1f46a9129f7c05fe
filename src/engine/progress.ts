/** Build progress is ephemeral: published for a following CLI, never stored as events. */
export function progressChannel(identity: string): string {
  return `cb:progress:{${identity}}`;
}
