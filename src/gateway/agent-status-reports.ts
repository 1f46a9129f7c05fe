import type { TokenBucket } from '../shared/token-bucket.js';
import { repeatsReport, type AgentReport } from './agent-report.js';
import type { DecisionLog } from './decision-log.js';

/** The agent's reports of this gateway run: their budget, and the last one recorded. */
export class AgentStatusReports {
  private last: AgentReport | undefined;
  constructor(
    readonly limiter: TokenBucket,
    private readonly decisions: DecisionLog,
  ) {}

  /** Records the report unless it repeats the last one; true when a line was written. */
  record(report: AgentReport): boolean {
    if (repeatsReport(this.last, report)) return false;
    this.last = report;
    this.decisions.status(report);
    return true;
  }
}
