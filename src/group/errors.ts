/** Errors of the elector group's input: typed, and in the library's one family (they extend InvalidOptionError). */
import { InvalidOptionError } from '../errors.js';

/** The same election name was given twice: a group leads each name once. */
export class DuplicateNameError extends InvalidOptionError {
  override name = 'DuplicateNameError';
  constructor(readonly duplicates: readonly string[]) {
    super('names', duplicates, `unique election names (given more than once: ${duplicates.map((d) => JSON.stringify(d)).join(', ')})`);
  }
}
