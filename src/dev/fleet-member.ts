/**
 * One fleet member process, forked by `drizzle-leader demo --fleet` and by the fleet benchmark
 * (bench/fleet.ts): campaigns for many names, either with one elector group (`mode: 'group'`) or
 * with one elector per name (`mode: 'electors'`, what the group replaces), on one client of its
 * own, and reports every leadership change to the parent over IPC with a wall clock comparable
 * across processes.
 *
 * Changes are sent in batches (every `FLUSH_MS`): with thousands of names a message per change
 * would cost the member more CPU than its campaign does, and skew the CPU it is measured for.
 */
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { createElector, createElectorGroup, createLeaderTable, type Elector, type ElectorGroup, SILENT_LOGGER } from '../index.js';
import { wallNow } from './candidate-protocol.js';

export interface FleetMemberInit {
  type: 'init';
  url: string;
  mode: 'group' | 'electors';
  id: string;
  names: string[];
  /** The group the members share (group mode). */
  group: string;
  timings: { ttl: number; renewInterval: number; safetyMargin: number };
  /** Campaign in `<schema>.river_leader` (the demo's scratch schema) instead of public.river_leader. */
  leaseSchema?: string;
  /** The client's pool size: the library opens its own statement connections beside it either way. */
  poolMax: number;
}

export type FleetMemberCommand = FleetMemberInit | { type: 'stop' } | { type: 'stats' };

/** One leadership change: `g` gained, `l` lost. */
export type FleetChange = { k: 'g' | 'l'; name: string; term: number; at: number; reason?: string };

export type FleetMemberReport =
  | { type: 'loaded' }
  | { type: 'ready'; id: string; pid: number; at: number }
  | { type: 'changes'; id: string; changes: FleetChange[] }
  | { type: 'stopping'; id: string; at: number }
  | { type: 'stopped'; id: string; at: number }
  | { type: 'stats'; id: string; statements: number; leads: number }
  | { type: 'error'; id: string; message: string };

export const FLUSH_MS = 20;

const send = (report: FleetMemberReport) => {
  if (process.connected) process.send?.(report);
};

let pending: FleetChange[] = [];
let memberId = '';
const flush = () => {
  if (pending.length === 0) return;
  send({ type: 'changes', id: memberId, changes: pending });
  pending = [];
};

let group: ElectorGroup | null = null;
const electors: Elector[] = [];
let client: postgres.Sql | null = null;
let stopping = false;

async function start(init: FleetMemberInit): Promise<void> {
  memberId = init.id;
  client = postgres(init.url, {
    max: init.poolMax,
    onnotice: () => {},
    backoff: () => 0.2,
    connection: { application_name: init.id },
  });
  const db = drizzle(client);
  const table = init.leaseSchema ? createLeaderTable({ schema: init.leaseSchema, table: 'river_leader' }).table : undefined;
  const common = { ...init.timings, id: init.id, table, logger: SILENT_LOGGER };
  setInterval(flush, FLUSH_MS).unref();
  if (init.mode === 'group') {
    group = createElectorGroup(db, { ...common, names: init.names, group: init.group });
    group.subscribe((event) => {
      pending.push({
        k: event.type === 'gained' ? 'g' : 'l',
        name: event.name,
        term: event.term,
        at: wallNow(),
        reason: event.type === 'lost' ? event.reason : undefined,
      });
    });
    await group.start();
  } else {
    for (const name of init.names) {
      const elector = createElector(db, { ...common, name, id: `${init.id}/${name}` });
      elector.subscribe((event) => {
        pending.push({
          k: event.type === 'gained' ? 'g' : 'l',
          name,
          term: event.term,
          at: wallNow(),
          reason: event.type === 'lost' ? event.reason : undefined,
        });
      });
      electors.push(elector);
    }
    await Promise.all(electors.map((e) => e.start()));
  }
  send({ type: 'ready', id: init.id, pid: process.pid, at: wallNow() });
}

function statements(): number {
  if (group) {
    const s = group.stats.statements;
    return s.elections + s.renewals + s.heartbeats + s.resignations;
  }
  // Election and renewal statements: the elector's stats do not count its resignations.
  return electors.reduce((sum, e) => {
    const { elections: el, renewals: re } = e.stats;
    return sum + el.won + el.denied + el.failed + re.ok + re.denied + re.failed;
  }, 0);
}

process.on('message', async (command: FleetMemberCommand) => {
  try {
    if (command.type === 'init') await start(command);
    else if (command.type === 'stats') {
      send({
        type: 'stats',
        id: memberId,
        statements: statements(),
        leads: group ? group.leaderships().size : electors.filter((e) => e.isLeader).length,
      });
    } else if (command.type === 'stop' && !stopping) {
      stopping = true;
      flush();
      send({ type: 'stopping', id: memberId, at: wallNow() });
      await Promise.all([group?.stop(), ...electors.map((e) => e.stop())]);
      flush();
      send({ type: 'stopped', id: memberId, at: wallNow() });
      await client?.end({ timeout: 1 });
      process.disconnect?.();
      process.exit(0);
    }
  } catch (error) {
    send({ type: 'error', id: memberId, message: String((error as Error)?.stack ?? error) });
  }
});
// The parent is gone (Ctrl-C, crash): do not linger.
process.on('disconnect', () => process.exit(0));
// Loading this module (through tsx) takes a while on a busy machine: the parent times from here.
send({ type: 'loaded' });
