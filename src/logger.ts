/**
 * The logging shape the elector writes to: pino's (`logger.warn({ err }, 'msg')`), which
 * bunyan, pino child loggers and most structured loggers accept. Silent by default.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const noop = () => {};

/** The default logger: says nothing. */
export const SILENT_LOGGER: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
