/**
 * `npm run soak -- --minutes N [--write transaction] [--driver node-postgres]`: scenario 8
 * (churn) for as long as asked, then the same report and history check as the test suite.
 * `--write transaction`: the candidates write only through lease-checked transactions into a
 * ledger with no fence column (checked in commit order). Exits non-zero on any violation.
 */
import { parseArgs } from 'node:util';
import { churn } from './churn.js';
import { Cluster } from './cluster.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    candidates: { type: 'string', default: '8' },
    write: { type: 'string', default: 'fenced' },
    driver: { type: 'string', default: 'postgres.js' },
  },
});
const minutes = Number(values.minutes);
const candidates = Number(values.candidates);
const write = values.write as 'fenced' | 'transaction';
const driver = values.driver as 'postgres.js' | 'node-postgres';
if (
  !(minutes > 0) ||
  !(candidates >= 3) ||
  !['fenced', 'transaction'].includes(write) ||
  !['postgres.js', 'node-postgres'].includes(driver)
) {
  console.error(
    'usage: npm run soak -- --minutes N [--candidates 8] [--write fenced|transaction] [--driver postgres.js|node-postgres]  (N > 0, at least 3 candidates)',
  );
  process.exit(2);
}

const ttl = 1_000;
const renewInterval = 250;
const cluster = await Cluster.start({
  candidates,
  ttl,
  renewInterval,
  safetyMargin: 250,
  write,
  driver,
  holdMs: write === 'transaction' ? 15 : 0,
});
let failed = false;
try {
  console.log(
    `soak: ${candidates} candidates (${driver}, ${write} writes), ttl ${ttl} ms, renew ${renewInterval} ms, ${minutes} min of random faults`,
  );
  const report = await churn(cluster, {
    seconds: minutes * 60,
    liveness: ttl + renewInterval + 3_000,
    log: (line) => console.log(`  ${line}`),
  });
  await cluster.check();
  console.log(report);
  if (write === 'transaction') {
    const ledger = await cluster.ledger();
    console.log(`  ledger: ${ledger.length} committed writes, ${new Set(ledger.map((r) => r.term)).size} terms`);
    console.log('  violations: 0 (ledger checker: in commit order terms never decrease, one pid per term)');
  } else {
    console.log('  violations: 0 (history checker: terms by timestamp never decrease, one pid per term, fenced commits in term order)');
  }
} catch (error) {
  failed = true;
  console.error(String((error as Error).stack ?? error));
  console.error(cluster.describe());
} finally {
  await cluster.close();
}
process.exit(failed ? 1 : 0);
