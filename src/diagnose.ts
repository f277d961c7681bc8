/**
 * What a connection or statement error means for someone who has to fix it: the one place that
 * turns driver and server error codes into a sentence. The elector uses it to decide whether
 * retrying can help (a wrong password never heals; a restarting server does); the CLI uses it
 * for its one-line messages.
 */
import { findCause } from './util/cause.js';

export type DiagnosisKind =
  | 'authentication'
  | 'database-missing'
  | 'host-unknown'
  | 'not-postgres'
  /** A pooler (PgBouncer) turned the connection or statement away for now: a busy pool, a server restarting behind it. */
  | 'pooler-busy'
  | 'unreachable'
  | 'timeout'
  | 'closed'
  | 'table-missing'
  | 'permission'
  | 'schema-missing';

export interface Diagnosis {
  readonly kind: DiagnosisKind;
  /** True when retrying cannot help: the configuration or the database must change. */
  readonly fatal: boolean;
  /** What is wrong and what to do, in one line. */
  readonly message: string;
}

/**
 * 08P01 messages, besides login and database errors, that retrying cannot heal: PgBouncer's own
 * configuration (a startup parameter or packet it does not support, SSL it requires, "bouncer
 * config error"), or a protocol the server itself refused. Every other 08P01 (PgBouncer's
 * "query_wait_timeout", "server login has been failing, try again later", "no more connections
 * allowed", its shutdown...) is retried.
 */
const PERMANENT_PROTOCOL_ERROR = /unsupported|ssl required|config error|invalid (startup|frontend|length)|protocol/i;

interface CodedError {
  code?: unknown;
  message?: string;
  address?: string;
  port?: number;
  hostname?: string;
}

/** The diagnosis of an error from a driver or the server, or null when it is none of the known kinds. */
export function diagnose(error: unknown): Diagnosis | null {
  const root = findCause<CodedError>(error, (e) => typeof e.code === 'string');
  if (!root) return null;
  const where = root.hostname ?? root.address;
  const at = where ? ` at ${where}${root.port ? `:${root.port}` : ''}` : '';
  switch (root.code) {
    case '28P01':
      return { kind: 'authentication', fatal: true, message: 'Password authentication failed: check the user and password in the URL' };
    case '28000':
      return { kind: 'authentication', fatal: true, message: `PostgreSQL refused the login: ${root.message}` };
    case '3D000':
      return { kind: 'database-missing', fatal: true, message: `${root.message}: create it or fix the database name in the URL` };
    case 'ENOTFOUND':
      return {
        kind: 'host-unknown',
        fatal: true,
        message: `Cannot resolve the database host${where ? ` "${where}"` : ''}: check the host in the URL`,
      };
    case 'EAI_AGAIN':
      return {
        kind: 'host-unknown',
        fatal: false,
        message: `Cannot resolve the database host${where ? ` "${where}"` : ''} (DNS did not answer): check the host in the URL`,
      };
    case '08P01': {
      // PgBouncer answers with 08P01 for conditions that pass (a pool with no free server
      // connection, a server restarting behind it), for its configuration, and for the server's
      // own login errors it passes on: only the passing ones are retried.
      const message = root.message ?? '';
      if (/password authentication failed|authentication failed|role ".*" does not exist|no such user/i.test(message))
        return {
          kind: 'authentication',
          fatal: true,
          message: `The login was refused through the pooler${at} (${message}): check the user and password`,
        };
      if (/database ".*" does not exist|no such database/i.test(message))
        return {
          kind: 'database-missing',
          fatal: true,
          message: `${message}${at}: create it, or fix the database name in the URL or the pooler's [databases] entry`,
        };
      if (PERMANENT_PROTOCOL_ERROR.test(message))
        return {
          kind: 'not-postgres',
          fatal: true,
          message: `The server or pooler${at} refused the connection (${message}): check the host and port in the URL, and the pooler's configuration`,
        };
      return {
        kind: 'pooler-busy',
        fatal: false,
        message: `The pooler${at} turned the request away for now (${message}): retrying; if it lasts, check the pooler's pool size and its server`,
      };
    }
    case 'SASL_SIGNATURE_MISMATCH':
      return {
        kind: 'not-postgres',
        fatal: true,
        message: `The server${at} does not speak the PostgreSQL protocol as expected (${root.message}): check the host and port in the URL`,
      };
    case 'ECONNREFUSED':
      return {
        kind: 'unreachable',
        fatal: false,
        message: `Cannot reach PostgreSQL${at} (connection refused): is the server running and the URL right?`,
      };
    case 'CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return { kind: 'timeout', fatal: false, message: `Timed out connecting to PostgreSQL${at}: check the host, port and firewall` };
    case 'ECONNRESET':
    case 'CONNECTION_CLOSED':
    case 'CONNECTION_ENDED':
    case 'CONNECTION_DESTROYED':
      return {
        kind: 'closed',
        fatal: false,
        message: 'The connection to PostgreSQL was closed: is the server up and accepting connections?',
      };
    case '42P01':
      return {
        kind: 'table-missing',
        fatal: true,
        message: 'The lease table does not exist: run `drizzle-leader migrate` (or apply the migrations with your drizzle-kit flow)',
      };
    case '42501':
      return { kind: 'permission', fatal: true, message: `Permission denied: ${root.message}; grant the role access to the lease table` };
    case '3F000':
      return {
        kind: 'schema-missing',
        fatal: true,
        message: `${root.message}: check the schema name (--schema, or createLeaderTable({ schema }))`,
      };
    default:
      return null;
  }
}
