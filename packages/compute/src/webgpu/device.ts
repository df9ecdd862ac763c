/**
 * Opening a WebGPU device through Dawn's Node bindings (npm `webgpu`).
 * Vulkan first where it exists (GPUs), else OpenGL ES in compatibility mode
 * (Mesa's software GL on machines without a GPU, with EGL_PLATFORM=surfaceless).
 * ADANNS_WEBGPU_BACKEND=vulkan|opengles forces one.
 */
export interface WebGpuDevice {
  /** The Dawn instance: held so it is not collected while its device is in use. */
  instance: GPU;
  device: GPUDevice;
  /** Dawn backend that produced the adapter. */
  api: 'vulkan' | 'opengles';
  /** Adapter description (vendor, device, driver). */
  description: string;
  /** A software rasteriser (llvmpipe, SwiftShader, fallback adapter): correct, not fast. */
  software: boolean;
  limits: GPUSupportedLimits;
}

const SOFTWARE = /llvmpipe|softpipe|swiftshader|lavapipe/i;

/** Limits the kernels need above WebGPU's (compatibility-mode) defaults, raised as far as the adapter allows. */
const RAISED: (keyof GPUSupportedLimits)[] = ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY'];

async function tryApi(api: 'vulkan' | 'opengles'): Promise<WebGpuDevice | undefined> {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create([`backend=${api}`]);
  const adapter = await gpu.requestAdapter(api === 'opengles' ? ({ featureLevel: 'compatibility' } as GPURequestAdapterOptions) : {});
  if (!adapter) return undefined;
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED) requiredLimits[name] = adapter.limits[name] as number;
  const device = await adapter.requestDevice({ requiredLimits });
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ').trim() || api;
  const software = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || SOFTWARE.test(description);
  return { instance: gpu, device, api, description, software, limits: device.limits };
}

/** Opens a device, or explains why there is none. */
export async function openWebGpu(): Promise<WebGpuDevice> {
  // Mesa's EGL needs no display for compute
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const forced = process.env.ADANNS_WEBGPU_BACKEND;
  if (forced !== undefined && forced !== 'vulkan' && forced !== 'opengles') throw new Error(`ADANNS_WEBGPU_BACKEND must be vulkan or opengles, got "${forced}"`);
  const apis: ('vulkan' | 'opengles')[] = forced ? [forced] : ['vulkan', 'opengles'];
  const failures: string[] = [];
  for (const api of apis) {
    try {
      const opened = await tryApi(api);
      if (opened) return opened;
      failures.push(`${api}: no adapter`);
    } catch (e) {
      failures.push(`${api}: ${(e as Error).message}`);
    }
  }
  throw new Error(
    `no WebGPU adapter (${failures.join('; ')}). On a machine without a GPU install Mesa: apt-get install -y libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri; on an NVIDIA machine the Vulkan loader: libvulkan1`,
  );
}
