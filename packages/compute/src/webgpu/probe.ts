import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageScript } from '../package-files.js';
import { openWebGpu } from './device.js';

const LOADER_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];

/** Whether the Vulkan loader (the only way to a hardware adapter for Dawn on Linux servers) is installed. */
function vulkanLoader(): boolean {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LOADER_DIRS];
  return dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')));
}

/**
 * Is there a hardware WebGPU adapter? Asked in a child process, because
 * loading Dawn here would tie this process to it (Dawn and threads started
 * after it do not mix), and only when a Vulkan loader exists at all.
 */
export function probeHardwareWebGpu(): { hardware: boolean; why: string } {
  if (!vulkanLoader()) return { hardware: false, why: 'no Vulkan loader (libvulkan1) for a hardware WebGPU adapter' };
  const script = packageScript(import.meta.url, './probe');
  const probe = spawnSync(process.execPath, [...script.execArgv, script.path], { encoding: 'utf8', timeout: 30_000 });
  if (probe.status !== 0) return { hardware: false, why: `WebGPU probe failed (${probe.signal ?? `exit ${probe.status}`})` };
  try {
    const found = JSON.parse(probe.stdout.trim().split('\n').pop() ?? '') as { description: string; software: boolean };
    return found.software ? { hardware: false, why: `only a software WebGPU adapter (${found.description})` } : { hardware: true, why: found.description };
  } catch {
    return { hardware: false, why: 'WebGPU probe gave no answer' };
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const gpu = await openWebGpu();
  console.log(JSON.stringify({ description: gpu.description, software: gpu.software }));
  gpu.device.destroy();
}
