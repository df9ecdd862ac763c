/** Runs `tick` now and again after `delayMs()` until the page is left; a failing tick is reported and retried. */
export function poll(signal: AbortSignal, tick: () => Promise<void>, delayMs: () => number, fail: (e: unknown) => void): void {
  const loop = async () => {
    if (signal.aborted) return;
    try {
      await tick();
    } catch (e) {
      if (!signal.aborted) fail(e);
    }
    if (!signal.aborted) setTimeout(() => void loop(), delayMs());
  };
  void loop();
}

export const href = (name: string, rest = '') => `#/c/${encodeURIComponent(name)}${rest}`;
