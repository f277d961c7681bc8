import { timestamp } from '../../dev/format.js';

/**
 * Narration. In a terminal: event lines scroll as usual while a status line (who leads, term,
 * lease left) and a progress spinner are redrawn in place below them. Without a TTY (CI, pipes)
 * or with --json: plain timestamped lines only (to stderr with --json).
 */
export class LiveView {
  readonly #tty: boolean;
  readonly #stream: NodeJS.WriteStream;
  #statusLine = '';
  #progressLine = '';
  #drawn = 0;
  #spinner: NodeJS.Timeout | null = null;
  #frame = 0;

  constructor(json: boolean) {
    this.#stream = json ? process.stderr : process.stdout;
    this.#tty = Boolean(this.#stream.isTTY) && !process.env.CI;
  }

  log(line: string): void {
    this.#progressLine = '';
    this.#stopSpinner();
    this.#stream.write(`${this.#tty ? this.#erase() : ''}${timestamp()}  ${line}\n`);
    if (this.#tty) this.#draw();
  }

  progress(line: string): void {
    if (!this.#tty) {
      this.#stream.write(`${timestamp()}  ${line}...\n`);
      return;
    }
    this.#progressLine = line;
    this.#stopSpinner();
    this.#spinner = setInterval(() => {
      this.#frame++;
      this.#draw();
    }, 100);
    this.#draw();
  }

  status(line: string): void {
    this.#statusLine = line;
    if (this.#tty) this.#draw();
  }

  close(): void {
    this.#stopSpinner();
    if (this.#tty) this.#stream.write(this.#erase());
    this.#progressLine = '';
    this.#statusLine = '';
  }

  #stopSpinner(): void {
    if (this.#spinner) clearInterval(this.#spinner);
    this.#spinner = null;
  }

  /** Moves the cursor to the start of the redrawn block and clears it. */
  #erase(): string {
    const out = this.#drawn > 0 ? `\x1b[${this.#drawn}F\x1b[0J` : '';
    this.#drawn = 0;
    return out;
  }

  #draw(): void {
    const spin = '|/-\\'[this.#frame % 4];
    const lines = [
      ...(this.#statusLine ? [`\x1b[1m> ${this.#statusLine}\x1b[0m`] : []),
      ...(this.#progressLine ? [`${spin} ${this.#progressLine}...`] : []),
    ];
    this.#stream.write(this.#erase() + lines.map((l) => `${l}\n`).join(''));
    this.#drawn = lines.length;
  }
}
