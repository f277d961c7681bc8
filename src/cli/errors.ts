/**
 * One clear line for every error an operator can cause or fix: what is wrong and what to do.
 */
import { DrizzleLeaderError } from '../index.js';
import { findCause } from '../internal.js';

/** Bad input on the command line (exit code 2). */
export class UsageError extends DrizzleLeaderError {
  override name = 'UsageError';
}

export interface ExplainedError {
  readonly message: string;
  /** True when the operator can fix it (bad input, unreachable server, missing table): exit code 2. */
  readonly operator: boolean;
}

interface PgLikeError {
  code?: string;
  message?: string;
  address?: string;
  port?: number;
  hostname?: string;
  cause?: unknown;
}

export function explainError(error: unknown): ExplainedError {
  if (error instanceof UsageError) return { message: error.message, operator: true };
  const root = findCause<PgLikeError>(error, (e) => typeof e.code === 'string') ?? (error as PgLikeError);
  const code = root?.code;
  const where = root?.hostname ?? root?.address;
  switch (code) {
    case 'ECONNREFUSED':
      return {
        message: `Cannot reach PostgreSQL${where ? ` at ${where}${root.port ? `:${root.port}` : ''}` : ''} (connection refused): is the server running and the URL right?`,
        operator: true,
      };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { message: `Cannot resolve the database host${where ? ` "${where}"` : ''}: check the host in the URL`, operator: true };
    case 'CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return { message: 'Timed out connecting to PostgreSQL: check the host, port and firewall', operator: true };
    case 'ECONNRESET':
    case 'CONNECTION_CLOSED':
    case 'CONNECTION_ENDED':
      return { message: 'The connection to PostgreSQL was closed: is the server up and accepting connections?', operator: true };
    case '28P01':
      return { message: 'Password authentication failed: check the user and password in the URL', operator: true };
    case '28000':
      return { message: `PostgreSQL refused the login: ${root.message}`, operator: true };
    case '3D000':
      return { message: `${root.message}: create it or fix the database name in the URL`, operator: true };
    case '42P01':
      return {
        message: 'The lease table does not exist: run `drizzle-leader migrate` (or apply the migrations with your drizzle-kit flow)',
        operator: true,
      };
    case '42501':
      return { message: `Permission denied: ${root.message}; grant the role access to the lease table`, operator: true };
    case '3F000':
      return { message: `${root.message}: check --schema`, operator: true };
    default:
      break;
  }
  if (error instanceof DrizzleLeaderError) return { message: error.message, operator: true };
  const message = error instanceof Error ? error.message : String(error);
  return { message, operator: false };
}
