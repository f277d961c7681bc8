/**
 * The loggers the library ships. By default warnings and errors go to stderr, one line each,
 * the same line at most once per 10 s (with a count of what was held back), so a wrong URL or
 * a lost connection is never silent; `SILENT_LOGGER` (or any pino-compatible logger) is an
 * explicit choice.
 */
import type { Logger } from './types.js';

const noop = () => {};

/** Says nothing. */
export const SILENT_LOGGER: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

const REPEAT_MS = 10_000;

/** Warnings and errors to stderr, rate-limited per message; debug and info dropped. */
export function stderrLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const last = new Map<string, { at: number; held: number }>();
  const emit = (level: 'warn' | 'error') => (fields: object, message: string) => {
    const now = Date.now();
    const seen = last.get(message);
    if (seen && now - seen.at < REPEAT_MS) {
      seen.held++;
      return;
    }
    last.set(message, { at: now, held: 0 });
    if (last.size > 100) last.delete(last.keys().next().value as string);
    const { err, name } = fields as { err?: unknown; name?: unknown };
    const detail = err instanceof Error ? `: ${err.message}` : '';
    const held = seen?.held ? ` (${seen.held} more like this in the last ${REPEAT_MS / 1000} s)` : '';
    write(`${new Date(now).toISOString()} ${level.toUpperCase()} ${message}${name ? ` [${String(name)}]` : ''}${detail}${held}\n`);
  };
  return Object.freeze({ debug: noop, info: noop, warn: emit('warn'), error: emit('error') });
}

/** The default logger: one per process, so its rate limit spans every elector. */
export const DEFAULT_LOGGER: Logger = stderrLogger();
