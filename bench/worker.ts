/**
 * A benchmark worker process: hosts electors (or advisory-lock candidates) and reports
 * leadership changes to the parent over IPC with a wall clock comparable across processes.
 */
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres, { type Sql } from 'postgres';
import { wallNow } from '../src/dev/candidate-protocol.js';
import { leaseStore, parseNotification } from '../src/dev/testing.js';
import { Elector, type ElectorOptions, type LeaderDatabase } from '../src/index.js';
import { AdvisoryLockCandidate } from './advisory-lock.js';

export type WorkerInit =
  | {
      type: 'electors';
      url: string;
      names: string[];
      options: ElectorOptions;
      /** One client (pool + one LISTEN) for all electors of the process, or one client each. */
      shareClient: boolean;
      poolMax: number;
      appName: string;
      /** false: every follower elects on `resigned` (the herd), for the before/after comparison. */
      nextInLine?: boolean;
    }
  | { type: 'advisory'; url: string; count: number; key: number; pollMs: number }
  | { type: 'floor'; url: string; channel: string }
  /** The library's election statement (as the next in line sends it) on each `resigned` heard on `channel`, with no elector around it. */
  | { type: 'statements'; url: string; channel: string };

export type WorkerCommand = WorkerInit | { type: 'stop-leader' } | { type: 'replace' } | { type: 'state' } | { type: 'shutdown' };

export type WorkerReport =
  /** The module has loaded and listens for commands (tsx's compile time is not the library's). */
  | { type: 'loaded' }
  | { type: 'ready' }
  | { type: 'gained'; at: number; term: number; name: string }
  | { type: 'stopped'; at: number }
  | { type: 'replaced' }
  | { type: 'floor'; at: number; sentAt: number }
  | { type: 'statements'; at: number; won: boolean }
  /** What each elector of the process believes, for the parent's report when a handoff never completes. */
  | { type: 'state'; electors: { id: string; state: string; leading: boolean; stats: unknown }[] };

const send = (report: WorkerReport) => process.connected && process.send?.(report);
const clients: Sql[] = [];
const electors: Elector[] = [];
const advisory: AdvisoryLockCandidate[] = [];
let init: WorkerInit | null = null;
let shared: LeaderDatabase | null = null;
let stoppedName: string | null = null;

function newClient(url: string, max: number, appName: string): Sql {
  const client = postgres(url, { max, onnotice: () => {}, backoff: () => 0.2, connection: { application_name: appName } });
  clients.push(client);
  return client;
}

async function addElector(config: Extract<WorkerInit, { type: 'electors' }>, name: string): Promise<Elector> {
  const fresh = () => drizzle(newClient(config.url, config.poolMax, config.appName)) as unknown as LeaderDatabase;
  if (config.shareClient && !shared) shared = fresh();
  const db = config.shareClient && shared ? shared : fresh();
  const elector = new Elector(db, { ...config.options, name }, { nextInLine: config.nextInLine !== false });
  elector.subscribe((event) => {
    if (event.type === 'gained') send({ type: 'gained', at: wallNow(), term: event.term, name });
  });
  electors.push(elector);
  await elector.start();
  return elector;
}

function addAdvisory(config: Extract<WorkerInit, { type: 'advisory' }>): AdvisoryLockCandidate {
  const candidate = new AdvisoryLockCandidate(config.url, config.key, config.pollMs, () =>
    send({ type: 'gained', at: wallNow(), term: 0, name: 'advisory' }),
  );
  advisory.push(candidate);
  void candidate.start();
  return candidate;
}

process.on('message', async (command: WorkerCommand) => {
  if (command.type === 'electors') {
    init = command;
    await Promise.all(command.names.map((name) => addElector(command, name)));
    send({ type: 'ready' });
  } else if (command.type === 'advisory') {
    init = command;
    for (let i = 0; i < command.count; i++) addAdvisory(command);
    send({ type: 'ready' });
  } else if (command.type === 'floor') {
    init = command;
    const listener = newClient(command.url, 1, 'floor-listen');
    const writer = newClient(command.url, 1, 'floor-write');
    // The row the parent's DELETE removes: each notification is answered by inserting it again,
    // a real INSERT that commits a row (as an election does), not a conflict that writes nothing.
    await writer`create table if not exists bench_floor (k int primary key)`;
    await writer`insert into bench_floor values (1) on conflict do nothing`;
    await listener.listen(command.channel, async (payload) => {
      await writer`insert into bench_floor values (1)`;
      send({ type: 'floor', at: wallNow(), sentAt: Number(payload) });
    });
    send({ type: 'ready' });
  } else if (command.type === 'statements') {
    init = command;
    const listener = newClient(command.url, 1, 'statements-listen');
    // As on the library's own connections (lease/connection.ts): each statement planned once.
    const writer = postgres(command.url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'statements-write', plan_cache_mode: 'force_generic_plan' },
    });
    clients.push(writer);
    const store = leaseStore(drizzle(writer) as unknown as LeaderDatabase, { channel: command.channel });
    await listener.listen(command.channel, async (payload) => {
      const hint = parseNotification(payload);
      if (hint?.action !== 'resigned') return;
      // As the next in line told alone elects: without the in-statement `elected` NOTIFY (it
      // announces the handoff in a statement of its own once it leads, after the measured point).
      const result = await store.elect({ name: hint.name, leaderId: 'scripted-follower', ttlMs: 15_000, channel: null });
      send({ type: 'statements', at: wallNow(), won: result.won });
    });
    send({ type: 'ready' });
  } else if (command.type === 'stop-leader') {
    // The stopped candidate is replaced only when the parent says so (after the handoff), so a
    // fresh candidate's first attempt can never be what ends the measurement.
    if (init?.type === 'electors') {
      const leader = electors.find((e) => e.isLeader);
      if (!leader) return;
      stoppedName = leader.options.name;
      // Reported once stop() has returned, with the time it was called: an IPC send costs this
      // process 0.2-0.4 ms, which would otherwise be counted in the handoff it measures.
      const at = wallNow();
      await leader.stop();
      send({ type: 'stopped', at });
      electors.splice(electors.indexOf(leader), 1);
    } else if (init?.type === 'advisory') {
      const leader = advisory.find((c) => c.isLeader);
      if (!leader) return;
      const at = wallNow();
      await leader.stop();
      send({ type: 'stopped', at });
      advisory.splice(advisory.indexOf(leader), 1);
    }
  } else if (command.type === 'replace') {
    if (init?.type === 'electors' && stoppedName) await addElector(init, stoppedName);
    else if (init?.type === 'advisory') addAdvisory(init);
    send({ type: 'replaced' });
  } else if (command.type === 'state') {
    send({
      type: 'state',
      electors: electors.map((e) => ({ id: e.id, state: e.state, leading: e.isLeader, stats: e.stats })),
    });
  } else if (command.type === 'shutdown') {
    await Promise.all([...electors.map((e) => e.stop()), ...advisory.map((c) => c.stop())]);
    await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'loaded' });
