/**
 * PostgreSQL primary failover: a primary and a streaming standby from Debian's PostgreSQL
 * binaries, candidate processes on a multi-host URL (target_session_attrs=read-write). The
 * primary is stopped in immediate mode and the standby promoted; the fault harness's history
 * checker must find no stale-term action, a leader must come back within the bound, a later
 * graceful handoff must still go through NOTIFY, and terms must keep increasing. Then the old
 * primary comes back read-only: no elector connected to it may lead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wallNow } from '../src/dev/candidate-protocol.js';
import { Cluster, sleep } from './faults/cluster.js';
import { debianPostgresBin, ReplicaSet } from './support/replica-set.js';

const bin = debianPostgresBin();
if (!bin) console.log('failover test skipped: no Debian PostgreSQL binaries (.ci/run installs the postgresql package)');

const TTL = 1_500;
const RENEW = 300;
/** ttl + renewInterval + reconnect backoff (the candidates' pools retry every 200 ms) + promotion and scheduling slack. */
const BOUND_MS = TTL + RENEW + 2_000 + 2_000;

describe.skipIf(!bin)('primary failover', { timeout: 120_000 }, () => {
  let set: ReplicaSet;
  let cluster: Cluster;
  beforeAll(async () => {
    set = await ReplicaSet.create(bin!);
    cluster = await Cluster.start(
      { candidates: 3, ttl: TTL, renewInterval: RENEW, safetyMargin: 300 },
      { adminUrl: set.multiHostUrl, candidateUrl: set.multiHostUrl },
    );
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await set?.destroy();
  });

  it('after the primary dies and the standby is promoted: one leader again, fenced history clean, NOTIFY handoff still fast', async () => {
    const leader = await cluster.waitForSingleLeader(BOUND_MS);
    const termBefore = cluster.leaderTerm(leader)!;
    await sleep(500);
    cluster.faults.push('stop the primary (immediate)');
    await set.stopPrimary();
    cluster.faults.push('promote the standby');
    await set.promoteStandby();
    const promotedAt = wallNow();
    // One leader again, renewing on the new primary: either the old leader, whose replicated
    // lease it renews with the same term if its trust did not run out meanwhile, or a newer term.
    let current = await cluster.waitForSingleLeader(BOUND_MS);
    await expect
      .poll(async () => (await cluster.leaseExpiry())?.expiresAt ?? 0, { timeout: BOUND_MS, interval: 100 })
      .toBeGreaterThan(promotedAt + TTL / 2);
    current = await cluster.waitForSingleLeader(BOUND_MS);
    const lease = await cluster.leaseExpiry();
    expect(lease?.leaderId).toBe(current.id);
    expect(lease!.term).toBeGreaterThanOrEqual(termBefore);
    expect(wallNow() - promotedAt).toBeLessThan(BOUND_MS + TTL);

    // LISTEN was re-established on the new primary: a graceful handoff still takes milliseconds.
    const handoffMark = cluster.transitions.length;
    const stoppedAt = await cluster.stop(current);
    const after = await cluster.waitForTransition((t) => t.event === 'gained', BOUND_MS, handoffMark);
    expect(after.at - stoppedAt).toBeLessThan(TTL / 2);

    const gained = cluster.transitions.filter((t) => t.event === 'gained').map((t) => t.term);
    for (let i = 1; i < gained.length; i++) expect(gained[i]).toBeGreaterThan(gained[i - 1]!);
    await cluster.check();
    console.log(cluster.report('primary failover'));
  });

  it('an elector connected only to the old primary, back read-only, never leads', async () => {
    cluster.faults.push('old primary back, read-only');
    await set.restartOldPrimaryReadOnly();
    const stranded = await cluster.spawn(set.url('primary'));
    await sleep(TTL * 2);
    expect(cluster.transitions.filter((t) => t.pid === stranded.pid && t.event === 'gained')).toEqual([]);
    expect(cluster.errors.join('\n')).not.toMatch(/crash/i);
    // The election carries on on the new primary meanwhile.
    await cluster.waitForSingleLeader(BOUND_MS);
    await cluster.check();
  });
});
