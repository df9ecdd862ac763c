import cliProgress from 'cli-progress';

/**
 * Turns (stage, done, total) callbacks into one progress bar per stage on
 * stderr (periodic plain lines when stderr is not a terminal).
 */
export function progressBars(enabled = true): { update: (stage: string, done: number, total: number) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | undefined;
  let current = '';
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  return {
    update(stage, done, total) {
      if (!enabled) return;
      if (stage !== current || !bar) {
        stop();
        current = stage;
        bar = new cliProgress.SingleBar(
          { format: `${stage.padEnd(12)} [{bar}] {value}/{total} {duration_formatted}`, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      }
      bar.setTotal(total);
      bar.update(done);
      if (done >= total) stop();
    },
    stop,
  };
}
