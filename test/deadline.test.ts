/**
 * The client-side bounds (util/deadline.ts) with real Drizzle queries on a real server: a
 * Drizzle query is a lazy thenable that sends its statement at every `then()`.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settledWithin, withDeadline } from '../src/dev/testing.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

describe.each(DRIVERS)('deadlines around a Drizzle query (%s)', (driver) => {
  let conn: Connection;
  beforeAll(async () => {
    conn = connect(driver, await createTestDatabase());
    await conn.query('create table sent (n serial primary key)');
  });
  afterAll(() => conn.close());

  const sentCount = async () => Number((await conn.query<{ n: string }>('select count(*)::text as n from sent'))[0]!.n);

  it('withDeadline sends the statement once', async () => {
    const before = await sentCount();
    await withDeadline(conn.db.execute(sql`insert into sent default values`), 5_000, () => 'no answer');
    // Before: the rejection handler and the race each subscribed, and each sent it.
    expect((await sentCount()) - before).toBe(1);
  });

  it('settledWithin sends the statement once', async () => {
    const before = await sentCount();
    expect(await settledWithin(conn.db.execute(sql`insert into sent default values`), 5_000)).toBe(true);
    expect((await sentCount()) - before).toBe(1);
  });
});
