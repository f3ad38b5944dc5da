/**
 * A pause that can be cut short: the consumers' poll waits (queue and stream) and the ticker's
 * wait between rounds. `wake()` ends the pause in progress; with `remember`,
 * a wake while nothing pauses ends the next pause at once.
 */
export class Pause {
  private pending = false;
  private end: (() => void) | undefined;

  /** Waits `ms`, or not at all when `skip` (stopping) or a wake is remembered. */
  for(ms: number, skip = false): Promise<void> {
    if (this.pending || skip) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const end = (): void => {
        clearTimeout(timer);
        if (this.end === end) this.end = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.end = end;
    });
  }

  wake(remember = false): void {
    if (this.end) this.end();
    else if (remember) this.pending = true;
  }

  /** Forgets a remembered wake (the next pause waits its full time). */
  forget(): void {
    this.pending = false;
  }
}
