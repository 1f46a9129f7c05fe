/** dockerode reports HTTP status on errors; 404 means "already gone" for removals, 409 "already exists/in progress". */
export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err
    ? (err as { statusCode?: number }).statusCode
    : undefined;
}
