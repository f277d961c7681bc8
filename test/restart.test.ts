/**
 * Terms survive a server restart, and an elector rides one out. This file starts a private
 * server of its own: tests only ever restart a server they started.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { leaseStore } from '../src/dev/testing.js';
import { createElector, migrate } from '../src/index.js';
import { connect, DRIVERS } from './support/db.js';
import { type EmbeddedServer, startEmbeddedServer } from './support/server.js';

let server: EmbeddedServer;
beforeAll(async () => {
  server = await startEmbeddedServer();
  const conn = connect('postgres.js', server.url);
  await migrate(conn.db);
  await conn.close();
});
afterAll(() => server?.stop());

describe.each(DRIVERS)('server restart (%s)', (driver) => {
  it('terms keep increasing across a restart, and the elector leads again with a larger term', async () => {
    // postgres.js backs reconnects off up to 20 s by default (its `backoff` option); a short
    // backoff keeps this test quick. The elector itself adds no such delay.
    const conn = connect(driver, server.url, { reconnectBackoffSeconds: 0.2 });
    const name = `restart-${driver}`;
    const elector = createElector(conn.db, { name, ttl: 2_000, renewInterval: 300, safetyMargin: 300 });
    try {
      await elector.start();
      const before = elector.lease!.term;
      const resigned = await leaseStore(conn.db).elect({ name: `${name}-other`, leaderId: 'x', ttlMs: 1_000 });
      expect(resigned.won).toBe(true);

      await server.pause();
      // No renewal can succeed: trust runs out, the elector steps down on its own.
      await vi.waitFor(() => expect(elector.isLeader).toBe(false), { timeout: 5_000 });
      await server.resume();

      await elector.waitForLeadership({ signal: AbortSignal.timeout(20_000) });
      expect(elector.lease!.term).toBeGreaterThan(before);
      const other = await leaseStore(conn.db).elect({ name: `${name}-fresh`, leaderId: 'y', ttlMs: 1_000 });
      if (!other.won || !resigned.won) throw new Error('setup');
      expect(other.lease.term).toBeGreaterThan(Math.max(elector.lease!.term, resigned.lease.term));
    } finally {
      await elector.stop();
      await conn.close();
    }
  });
});
