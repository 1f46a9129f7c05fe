/**
 * The Claude Code hooks every bottle gets: they run `bottle-status hook`, which reports to the
 * bottle's gateway when Claude Code waits for the operator (a permission prompt, a question, the end
 * of its turn) and when it works again, so `bottle list`, `bottle wait` and `bottle notify` can say
 * which bottle needs a person. They are added to the hooks the bottle's settings already hold, which
 * keep running as before; a settings file that already has them is left as it is.
 */

/** Where the agent container holds `bottle-status` (root-owned, copied in at launch). */
export const BOTTLE_STATUS_PATH = '/usr/local/bin/bottle-status';
export const BOTTLE_STATUS_HOOK_COMMAND = `${BOTTLE_STATUS_PATH} hook`;
/** Seconds Claude Code gives the hook; the command itself gives up on the gateway after three. */
const HOOK_TIMEOUT_SECONDS = 5;

/** Notification: permission and idle prompts, questions; Stop: the turn ended; the rest: working again. */
export const REPORTED_HOOK_EVENTS = [
  'Notification',
  'Stop',
  'UserPromptSubmit',
  'SessionStart',
  'PostToolUse',
] as const;

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether a matcher group of an event's hooks already runs `bottle-status hook`. */
function runsStatusHook(group: unknown): boolean {
  return (
    isObject(group) &&
    Array.isArray(group.hooks) &&
    group.hooks.some((hook) => isObject(hook) && hook.command === BOTTLE_STATUS_HOOK_COMMAND)
  );
}

/**
 * The settings with the status hooks added to each reported event's list (after the user's own).
 * An event whose entry is not a list, or a `hooks` that is not an object, is a file Claude Code
 * itself would refuse or read its own way: it is left as it is rather than rewritten.
 */
export function withStatusHooks(settings: JsonObject): JsonObject {
  if (settings.hooks !== undefined && !isObject(settings.hooks)) return settings;
  const hooks: JsonObject = { ...(settings.hooks ?? {}) };
  for (const event of REPORTED_HOOK_EVENTS) {
    const groups: unknown = hooks[event] ?? [];
    if (!Array.isArray(groups) || groups.some(runsStatusHook)) continue;
    hooks[event] = [
      ...(groups as unknown[]),
      { hooks: [{ type: 'command', command: BOTTLE_STATUS_HOOK_COMMAND, timeout: HOOK_TIMEOUT_SECONDS }] },
    ];
  }
  return { ...settings, hooks };
}
