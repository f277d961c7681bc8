/**
 * Ordered, isolated delivery of events to listeners. Each listener has its own queue: it sees
 * every event in order, an async listener is awaited before its next event, and a slow or
 * throwing listener delays nobody else, least of all the elector that emits.
 */
export class Subscribers<T> {
  readonly #listeners = new Map<(event: T) => unknown, { queue: Promise<void> }>();
  readonly #onError: (error: unknown) => void;

  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  add(listener: (event: T) => unknown): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    // The same function subscribed twice gets its own entry, like addEventListener would not:
    // wrap it so each subscription is independent.
    const entry = { queue: Promise.resolve() };
    const key = (event: T) => listener(event);
    this.#listeners.set(key, entry);
    return () => {
      this.#listeners.delete(key);
    };
  }

  emit(event: T): void {
    for (const [listener, entry] of this.#listeners) {
      entry.queue = entry.queue.then(async () => {
        if (!this.#listeners.has(listener)) return;
        try {
          await listener(event);
        } catch (error) {
          this.#onError(error);
        }
      });
    }
  }

  /** Resolves when every event emitted so far has been handled by every listener. */
  async drained(): Promise<void> {
    await Promise.all([...this.#listeners.values()].map((entry) => entry.queue));
  }
}
