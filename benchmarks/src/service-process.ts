import { fork } from 'node:child_process';
import { packageScript } from '@adanns/compute';

export interface ServiceProcess {
  url: string;
  /** SIGTERM (the service drains) and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts the single-node service (http-service.ts) as its own process on a
 * port the OS picks, with `env` added to this environment; resolves with its
 * URL once every collection is open (it says so over IPC: no polling).
 */
export async function startService(args: string[], env: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  const script = packageScript(import.meta.url, './http-service');
  const service = fork(script.path, ['--port', '0', ...args], {
    env: { ...process.env, ...env },
    execArgv: script.execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise((resolve) => service.once('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    service.once('message', (m: { url: string }) => resolve(m.url));
    service.once('exit', (code, signal) => reject(new Error(`the service exited before it was ready (${signal ?? `exit ${code}`})`)));
  });
  return {
    url,
    stop: async () => {
      service.kill('SIGTERM');
      await exited;
    },
  };
}
