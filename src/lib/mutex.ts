/** A process-local mutual exclusion: `run(fn)` calls run one at a time, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  /**
   * Runs `fn` after every earlier `run` call finished (whether it resolved or threw).
   * @returns what `fn` returns; rejects with what it throws
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
