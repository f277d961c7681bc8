/** The CLI as operators run it: a subprocess against the test server. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createElector, createElectorGroup, type Elector, MEMBER_PREFIX, SILENT_LOGGER } from '../src/index.js';
import { type Connection, connect, createTestDatabase, withDatabase } from './support/db.js';

const root = resolve(import.meta.dirname, '..');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  return new Promise((done) => {
    const { DATABASE_URL: _omit, ...rest } = process.env;
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { cwd: root, env: { ...rest, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

let url: string;
let conn: Connection;
const electors: Elector[] = [];
beforeAll(async () => {
  url = await createTestDatabase();
  conn = connect('postgres.js', url);
});
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
});
afterAll(() => conn.close());

const elector = async (name: string, id: string) => {
  const e = createElector(conn.db, { name, id, ttl: 5_000, renewInterval: 1_000 });
  electors.push(e);
  await e.start();
  return e;
};

// Every test starts CLI subprocesses (about 1 s each on an idle machine, several on a loaded CI
// runner with other files beside it): the default 30 s is too tight for the ones that start six.
describe('drizzle-leader CLI', { timeout: 120_000 }, () => {
  it('bad input gives one clear line and exit code 2', async () => {
    // Independent subprocesses: run side by side, so a loaded machine pays one start-up, not six.
    const [noUrl, notUrl, unreachable, verbose, noDb, unknownCommand] = await Promise.all([
      cli(['status']),
      cli(['status', '--url', 'localhost:5432']),
      cli(['status', '--url', 'postgres://u:p@127.0.0.1:1/db']),
      cli(['status', '--verbose', '--url', 'postgres://u:p@127.0.0.1:1/db']),
      cli(['status', '--url', withDatabase(url, 'no_such_database')]),
      cli(['frobnicate']),
    ]);
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr.trim()).toBe(
      'drizzle-leader: No database URL: pass --url postgres://user:password@host:5432/db or set DATABASE_URL',
    );

    expect(notUrl.code).toBe(2);
    expect(notUrl.stderr).toMatch(/must start with postgres:\/\//);

    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/Cannot reach PostgreSQL at 127\.0\.0\.1:1 \(connection refused\)/);
    expect(unreachable.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose

    expect(verbose.stderr).toMatch(/\n\s+at /);

    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toMatch(/database "no_such_database" does not exist: create it or fix the database name/);

    expect(unknownCommand.code).toBe(2);
  });

  it('a wrong password or unknown role is reported as a login problem', async () => {
    await conn.query(`create role cli_pw_test login password 'right-password'`);
    const bad = new URL(url);
    bad.username = 'cli_pw_test';
    bad.password = 'wrong-password';
    // A server with trust authentication (some DATABASE_URL setups) accepts any password.
    const probe = postgres(bad.toString(), { max: 1, onnotice: () => {} });
    const trusts = await probe`select 1`.then(
      () => true,
      () => false,
    );
    await probe.end();
    const result = await cli(['status', '--url', bad.toString()]);
    if (trusts) {
      expect(result.stderr).toMatch(/lease table does not exist|permission denied/i);
    } else {
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/Password authentication failed: check the user and password in the URL/);
    }
    const ghost = new URL(url);
    ghost.username = 'no_such_role';
    const unknownRole = await cli(['status', '--url', ghost.toString()]);
    expect(unknownRole.code).toBe(2);
    // Postgres does not tell a missing role from a wrong password (it would leak which roles exist).
    expect(unknownRole.stderr).toMatch(/no_such_role|Password authentication failed/);
  });

  it('a missing table says to run drizzle-leader migrate; migrate twice is idempotent', async () => {
    const fresh = await createTestDatabase({ migrated: false });
    const missing = await cli(['status', '--url', fresh]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/The lease table does not exist: run `drizzle-leader migrate`/);
    // watch says so too, at once, and never claims to be watching first.
    const watching = await cli(['watch', '--url', fresh]);
    expect(watching.code).toBe(2);
    expect(watching.stdout).not.toMatch(/watching/);
    expect(watching.stderr).toMatch(/The lease table does not exist/);

    const first = await cli(['migrate', '--url', fresh]);
    expect(first).toMatchObject({ code: 0, stdout: 'river_leader is up to date\n' });
    const second = await cli(['migrate', '--url', fresh]);
    expect(second).toMatchObject({ code: 0, stdout: 'river_leader is up to date\n' });
    const check = connect('postgres.js', fresh);
    try {
      // One row per shipped migration, however often migrate runs.
      const shipped = readdirSync(resolve(import.meta.dirname, '../drizzle')).filter((f) => f.endsWith('.sql'));
      expect(await check.query('select 1 from drizzle.__drizzle_leader_migrations')).toHaveLength(shipped.length);
      expect(await check.query('select 1 from river_leader')).toEqual([]);
    } finally {
      await check.close();
    }
  });

  it('status shows a running elector with its term', async () => {
    const e = await elector('cli-status', 'status-leader');
    const json = await cli(['status', '--json', '--url', url]);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as { name: string; leaderId: string; term: number; expired: boolean; remainingMs: number }[];
    expect(rows.find((r) => r.name === 'cli-status')).toMatchObject({ leaderId: 'status-leader', term: e.lease!.term, expired: false });
    const text = await cli(['status', '--url', url]);
    expect(text.stdout).toMatch(new RegExp(`cli-status\\s+status-leader\\s+${e.lease!.term}\\s+\\S+\\s+[\\d.]+ s\\s+leading`));
  });

  it('status groups an elector group by member and shows the spread', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `cli-fleet-${i}`);
    const members = ['cli-member-a', 'cli-member-b'].map((id) =>
      createElectorGroup(conn.db, { names, id, group: 'cli-fleet', ttl: 5_000, renewInterval: 300, logger: SILENT_LOGGER }),
    );
    try {
      await Promise.all(members.map((m) => m.start()));
      await vi.waitFor(
        () => {
          expect(members.map((m) => m.leaderships().size)).toEqual([3, 3]);
          expect(names.every((n) => members.filter((m) => m.leads(n)).length === 1)).toBe(true);
        },
        { timeout: 15_000, interval: 20 },
      );
      const ledBy = (m: (typeof members)[number]) => [...m.leaderships().keys()].sort();
      const text = await cli(['status', '--url', url]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain('GROUP cli-fleet: 2 live member(s), 6 name(s) led, spread 0 (max 3, min 3)');
      for (const m of members) {
        expect(text.stdout).toMatch(new RegExp(`${m.id}\\s+1\\s+3\\s+3\\s+${ledBy(m).join(', ')}`));
      }
      // Membership rows are shown under their group, not as elections.
      expect(text.stdout).not.toContain(MEMBER_PREFIX);
      const json = await cli(['status', '--json', '--url', url]);
      const rows = JSON.parse(json.stdout) as {
        name: string;
        leaderId: string;
        group?: string;
        member?: { group: string; weight: number };
      }[];
      for (const m of members) {
        expect(
          rows
            .filter((r) => r.group === 'cli-fleet' && r.leaderId === m.id)
            .map((r) => r.name)
            .sort(),
        ).toEqual(ledBy(m));
        expect(rows.find((r) => r.member && r.leaderId === m.id)?.member).toEqual({ group: 'cli-fleet', weight: 1 });
      }
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  });

  it('resign moves leadership to another candidate and prints the new term', async () => {
    const a = await elector('cli-resign', 'a');
    const b = await elector('cli-resign', 'b');
    const leader = a.isLeader ? a : b;
    const other = leader === a ? b : a;
    const oldTerm = leader.lease!.term;
    const result = await cli(['resign', 'cli-resign', '--url', url]);
    expect(result.code).toBe(0);
    await vi.waitFor(() => expect(other.isLeader).toBe(true));
    expect(result.stdout).toMatch(
      new RegExp(`cli-resign: term ${oldTerm} \\(${leader.id}\\) -> term ${other.lease!.term} \\(${other.id}\\) in `),
    );

    const unknown = await cli(['resign', 'no-such-election', '--url', url]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/No election named "no-such-election" \(live elections: .*cli-resign/);
  });

  it('watch prints the events of a handoff and exits cleanly on Ctrl-C', async () => {
    const a = await elector('cli-watch', 'watch-a');
    const b = await elector('cli-watch', 'watch-b');
    const leader = a.isLeader ? a : b;
    const { DATABASE_URL: _omit, ...env } = process.env;
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'watch', 'cli-watch', '--url', url], {
      cwd: root,
      env,
    });
    let out = '';
    child.stdout!.on('data', (chunk) => (out += chunk));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await vi.waitFor(
      () => {
        expect(out).toMatch(/watching election "cli-watch"/);
        expect(out).toMatch(/leader\s+cli-watch\s+term \d+ leader watch-/);
      },
      { timeout: 15_000 },
    );
    await leader.stop();
    await vi.waitFor(
      () => {
        expect(out).toMatch(/resigned\s+cli-watch\s+term \d+ leader /);
        expect(out).toMatch(/elected\s+cli-watch\s+term \d+ leader /);
      },
      { timeout: 5_000 },
    );
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('watch adds nothing per poll: no MaxListenersExceededWarning however long it runs', async () => {
    const { DATABASE_URL: _omit, ...env } = process.env;
    // At a 50 ms interval, 40 polls in 2 s: the old watch added an abort listener per poll and
    // warned after 11.
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'watch', '--interval', '50', '--url', url], {
      cwd: root,
      env,
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk) => (out += chunk));
    child.stderr!.on('data', (chunk) => (err += chunk));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await vi.waitFor(() => expect(out).toMatch(/watching all elections/), { timeout: 15_000 });
    await new Promise((r) => setTimeout(r, 2_000));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(err).not.toMatch(/MaxListenersExceededWarning/);
  });

  it('--help works for every command', async () => {
    const commands = ['migrate', 'status', 'watch', 'resign', 'demo'];
    const helps = await Promise.all(commands.map((command) => cli([command, '--help'])));
    commands.forEach((command, i) => {
      expect(helps[i]?.code).toBe(0);
      expect(helps[i]?.stdout).toMatch(new RegExp(`Usage: drizzle-leader ${command}`));
    });
  });
});
