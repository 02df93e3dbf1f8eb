/**
 * Deployment-key memory: a repeated Run returns the first answer instead of
 * starting a second job.
 */

/** Answers to this many recent keys are kept; servers retry within seconds. */
export const MAX_REMEMBERED_KEYS = 10_000;

/**
 * Remembers the answer to each deployment key. A repeat that arrives while the
 * first call runs waits for it; a Run that failed is forgotten so a retry
 * (or a waiting repeat) runs again.
 */
export class DeploymentKeys<T> {
  private readonly answers = new Map<string, Promise<T>>();

  constructor(private readonly capacity: number = MAX_REMEMBERED_KEYS) {}

  /** Returns the first answer for `key`, calling `start` only for the first. */
  runOnce(key: string, start: () => Promise<T>): Promise<T> {
    const known = this.answers.get(key);
    if (known !== undefined) {
      // A repeat shares the first call; if that fails, the repeat runs anew.
      return known.catch(() => this.runOnce(key, start));
    }
    const answer = start();
    this.answers.set(key, answer);
    // Maps iterate in insertion order, so the first key is the oldest.
    while (this.answers.size > this.capacity) {
      const oldest = this.answers.keys().next().value;
      if (oldest === undefined) break;
      this.answers.delete(oldest);
    }
    answer.catch(() => {
      if (this.answers.get(key) === answer) {
        this.answers.delete(key);
      }
    });
    return answer;
  }
}
