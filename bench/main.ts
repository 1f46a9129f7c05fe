// `npm run bench`: every benchmark, each figure next to a baseline measured in
// the same run and its target. Redis is a throwaway redis-server started here
// (loopback unix socket) so no benchmark touches anyone's queues or bottles.
import { benchEventLog, benchFsyncPolicies } from './event-log.bench.js';
import { benchEscape } from './escape.bench.js';
import { benchEgressCorpus } from './egress-corpus.bench.js';
import { benchAttention } from './attention.bench.js';
import { benchHosts } from './hosts.bench.js';
import { benchReplay } from './replay.bench.js';
import { benchRoundTrip } from './roundtrip.bench.js';
import { benchScale } from './scale.bench.js';
import { benchWarmStart } from './warm-start.bench.js';
import { benchUsage } from './usage.bench.js';
import { benchInspection } from './inspection.bench.js';
import { benchScan } from './scan.bench.js';
import { printRows } from './stats.js';
import { startTestRedis } from '../test/support/redis-server.js';

const only = process.argv.slice(2);
const want = (name: string) => only.length === 0 || only.includes(name);

const redis = await startTestRedis();
try {
  if (want('event-log')) {
    printRows('Event append (loopback Redis, unix socket)', await benchEventLog(redis.connect()));
    printRows(
      'Event append: appendfsync always (embedded default, compose) vs everysec, each its own redis-server',
      await benchFsyncPolicies(),
    );
  }
  if (want('roundtrip'))
    printRows(
      'Command round trip (CLI enqueue -> worker fold+append -> CLI sees event)',
      await benchRoundTrip(() => redis.connect()),
    );
  if (want('replay')) printRows('Replay of a 10,000-event history', await benchReplay(redis.connect()));
  if (want('warm-start'))
    printRows(
      'Warm start (image cached): bottle start --detach until running vs raw dockerode',
      await benchWarmStart(),
    );
  if (want('scale'))
    printRows('Scale: N bottles started at once (baseline: one bottle alone, same run)', await benchScale());
  if (want('hosts'))
    printRows(
      'Hosts: N bottles started at once on two hosts (N/2 each) vs one host; both daemons share this machine',
      await benchHosts(),
    );
  if (want('usage'))
    printRows(
      'Usage reader: SSE through the credential proxy, with the reader vs without (same run)',
      await benchUsage(),
    );
  if (want('inspection'))
    printRows(
      'Inspection: HTTPS through the gateway process, inspected and scanned vs end-to-end tunnel (same run)',
      await benchInspection(),
    );
  if (want('scan'))
    printRows(
      'Request-body scan in process: chunk inspector vs the simple search it replaced (same run, same chunks)',
      benchScan(),
    );
  if (only.includes('attention'))
    printRows(
      'Attention: Claude Code hook (bottle-status, by docker exec) -> event in the log / bottle wait returns; ' +
        `baseline: the docker exec alone`,
      await benchAttention(),
    ); // by name only: a real bottle
  if (only.includes('escape')) await benchEscape(); // by name only: real bottles under both runtimes
  if (only.includes('egress-corpus')) await benchEgressCorpus(); // by name only: a real bottle
} finally {
  await redis.destroy();
}
process.exit(0);
