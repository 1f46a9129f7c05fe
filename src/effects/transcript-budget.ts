/**
 * How much of the agent's `~/.claude` a transcript snapshot may copy onto the
 * worker's host. The agent writes that folder, so without a bound it could
 * fill the host's disk (a sparse 1 GiB file costs the agent nothing and the
 * host a real gigabyte). Entries are admitted in archive order while the
 * snapshot stays within the bottle's limit; a file that would take it over is
 * skipped and named. A file within the limit that the host has no room for
 * ends the snapshot instead: a transcript with holes the operator was not told
 * about is worse than a clear failure.
 */

/** Free space the snapshot always leaves on the state folder's disk, for the host's own use. */
export const FREE_SPACE_KEPT_BYTES = 64 * 1024 ** 2;
/** How many skipped files the event names; the rest are only counted. */
export const MAX_SKIPPED_NAMED = 20;

const UNITS: Readonly<Record<string, number>> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes of a size written as the manifest takes it ("256m", "1g"); undefined when it is not one. */
export function sizeInBytes(value: string): number | undefined {
  const m = /^([1-9][0-9]*)([bkmg])$/i.exec(value);
  return m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : undefined;
}

export interface SkippedFile {
  /** Path below the transcript folder. */
  path: string;
  bytes: number;
}

export class SnapshotWontFit extends Error {
  constructor(
    readonly path: string,
    readonly bytes: number,
    readonly freeBytes: number,
  ) {
    super(
      `the host has ${freeBytes} bytes free for the transcript snapshot, not enough for ${path} (${bytes} bytes) ` +
        `and the ${FREE_SPACE_KEPT_BYTES} bytes always kept free; nothing was kept`,
    );
    this.name = 'SnapshotWontFit';
  }
}

export class TranscriptBudget {
  private copiedBytes = 0;
  readonly skipped: SkippedFile[] = [];
  skippedCount = 0;
  skippedBytes = 0;

  /** `freeBytes`: what the state folder's disk had free when the snapshot began. */
  constructor(
    readonly limitBytes: number,
    readonly freeBytes: number,
  ) {}

  /** Whether a file of `bytes` is copied; a skipped one is recorded. Throws SnapshotWontFit when the disk is short. */
  admit(path: string, bytes: number): boolean {
    if (this.copiedBytes + bytes > this.limitBytes) {
      this.skippedCount++;
      this.skippedBytes += bytes;
      if (this.skipped.length < MAX_SKIPPED_NAMED) this.skipped.push({ path, bytes });
      return false;
    }
    if (this.copiedBytes + bytes > this.freeBytes - FREE_SPACE_KEPT_BYTES) {
      throw new SnapshotWontFit(path, bytes, this.freeBytes);
    }
    this.copiedBytes += bytes;
    return true;
  }
}
