/**
 * A primary and a streaming standby built from Debian's PostgreSQL binaries (initdb,
 * pg_basebackup -R), on loopback, in a temporary directory: for failover tests. As root, the
 * servers run as the `postgres` user.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/dev/embedded-server.js';

const run = promisify(execFile);

/** The newest installed Debian PostgreSQL's bin directory, or null. */
export function debianPostgresBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'pg_basebackup')) && existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : null;
}

export class ReplicaSet {
  private constructor(
    private readonly bin: string,
    private readonly root: string,
    readonly primaryPort: number,
    readonly standbyPort: number,
  ) {}

  static async create(bin: string): Promise<ReplicaSet> {
    const root = mkdtempSync(join(tmpdir(), 'drizzle-leader-ha-'));
    chmodSync(root, 0o777);
    const [primaryPort, standbyPort] = [await freePort(), await freePort()];
    const set = new ReplicaSet(bin, root, primaryPort, standbyPort);
    await set.#pg('initdb', ['-D', set.dir('primary'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    appendFileSync(
      join(set.dir('primary'), 'postgresql.conf'),
      [
        `port = ${primaryPort}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${root}'`,
        'wal_level = replica',
        'max_wal_senders = 10',
        'hot_standby = on',
        "wal_keep_size = '128MB'",
        'fsync = off',
        'max_connections = 200',
        '',
      ].join('\n'),
    );
    await set.#pg('pg_ctl', ['-D', set.dir('primary'), '-l', join(root, 'primary.log'), '-w', 'start']);
    await set.#pg('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      set.dir('standby'),
      '-R',
      '-X',
      'stream',
      '--no-sync',
    ]);
    appendFileSync(join(set.dir('standby'), 'postgresql.conf'), `port = ${standbyPort}\n`);
    await set.#pg('pg_ctl', ['-D', set.dir('standby'), '-l', join(root, 'standby.log'), '-w', 'start']);
    return set;
  }

  dir(node: 'primary' | 'standby'): string {
    return join(this.root, node);
  }

  url(node: 'primary' | 'standby'): string {
    return `postgres://postgres@127.0.0.1:${node === 'primary' ? this.primaryPort : this.standbyPort}/postgres`;
  }

  /** Both hosts; clients pick whichever accepts writes (postgres.js multi-host). */
  get multiHostUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.primaryPort},127.0.0.1:${this.standbyPort}/postgres?target_session_attrs=read-write`;
  }

  async stopPrimary(): Promise<void> {
    await this.#pg('pg_ctl', ['-D', this.dir('primary'), '-m', 'immediate', '-w', 'stop']);
  }

  async promoteStandby(): Promise<void> {
    await this.#pg('pg_ctl', ['-D', this.dir('standby'), '-w', 'promote']);
  }

  /** Brings the old primary back in recovery (read-only), as a fenced-off node rejoining would be. */
  async restartOldPrimaryReadOnly(): Promise<void> {
    const dir = this.dir('primary');
    writeFileSync(join(dir, 'standby.signal'), '');
    appendFileSync(join(dir, 'postgresql.auto.conf'), `primary_conninfo = 'host=127.0.0.1 port=${this.standbyPort} user=postgres'\n`);
    await this.#pg('pg_ctl', ['-D', dir, '-l', join(this.root, 'old-primary.log'), '-w', 'start']);
  }

  async destroy(): Promise<void> {
    for (const node of ['primary', 'standby'] as const) {
      await this.#pg('pg_ctl', ['-D', this.dir(node), '-m', 'immediate', '-w', 'stop']).catch(() => {});
    }
    rmSync(this.root, { recursive: true, force: true });
  }

  async #pg(tool: string, args: string[]): Promise<void> {
    const binary = join(this.bin, tool);
    // PostgreSQL refuses to run as root.
    const [command, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
    await run(command, argv as string[], { timeout: 60_000 });
  }
}
