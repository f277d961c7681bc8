/**
 * `npm run soak -- --minutes N`: scenario 8 (churn) for as long as asked, then the same report
 * and history check as the test suite. Exits non-zero on any violation.
 */
import { parseArgs } from 'node:util';
import { churn } from './churn.js';
import { Cluster } from './cluster.js';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, candidates: { type: 'string', default: '8' } } });
const minutes = Number(values.minutes);
const candidates = Number(values.candidates);
if (!(minutes > 0) || !(candidates >= 3)) {
  console.error('usage: npm run soak -- --minutes N [--candidates 8]  (N > 0, at least 3 candidates)');
  process.exit(2);
}

const ttl = 1_000;
const renewInterval = 250;
const cluster = await Cluster.start({ candidates, ttl, renewInterval, safetyMargin: 250 });
let failed = false;
try {
  console.log(`soak: ${candidates} candidates, ttl ${ttl} ms, renew ${renewInterval} ms, ${minutes} min of random faults`);
  const report = await churn(cluster, {
    seconds: minutes * 60,
    liveness: ttl + renewInterval + 3_000,
    log: (line) => console.log(`  ${line}`),
  });
  await cluster.check();
  console.log(report);
  console.log('  violations: 0 (history checker: terms by timestamp never decrease, one pid per term, fenced commits in term order)');
} catch (error) {
  failed = true;
  console.error(String((error as Error).stack ?? error));
  console.error(cluster.describe());
} finally {
  await cluster.close();
}
process.exit(failed ? 1 : 0);
