import { ConfigError, CONFIG_USAGE, loadConfig, serveUntilSignal } from '@adanns/api';
import { UsageError } from '@adanns/cli-kit';

export const serveUsage = CONFIG_USAGE;

export async function serveCommand(argv: string[]): Promise<void> {
  let config;
  try {
    config = loadConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  await serveUntilSignal(config);
}
