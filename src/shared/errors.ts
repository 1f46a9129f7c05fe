/**
 * Errors a user can cause carry an exit code and a one-line message; the CLI
 * prints only the message unless --verbose. Anything else is a bug or a
 * runtime failure (exit 1).
 */
export class BottleError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly detail?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad flags, bad identity, bad manifest: exit 2. */
export class UsageError extends BottleError {
  constructor(message: string, detail?: string) {
    super(message, 2, detail);
  }
}

/** Something failed at run time (Docker, Redis, a missing state folder): exit 1. */
export class RuntimeFailure extends BottleError {
  constructor(message: string, detail?: string) {
    super(message, 1, detail);
  }
}
