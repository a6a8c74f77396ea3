/**
 * Undo steps registered as things are set up, run in reverse order exactly once, each one even
 * when an earlier one failed: a half-built sandbox is taken apart as completely as a finished one.
 */
import type { Logger } from '../common/log.js';

export class CleanupStack {
  private readonly steps: { label: string; undo: () => Promise<void> | void }[] = [];
  private ran = false;

  constructor(private readonly log: Logger) {}

  push(label: string, undo: () => Promise<void> | void): void {
    if (this.ran) throw new Error(`cleanup already ran; cannot register '${label}'`);
    this.steps.push({ label, undo });
  }

  async run(): Promise<void> {
    if (this.ran) return;
    this.ran = true;
    for (const { label, undo } of this.steps.reverse()) {
      try {
        this.log.debug({ step: label }, 'cleaning up');
        await undo();
      } catch (err) {
        this.log.warn(
          { step: label, err: err instanceof Error ? err.message : String(err) },
          'cleanup step failed',
        );
      }
    }
  }
}
