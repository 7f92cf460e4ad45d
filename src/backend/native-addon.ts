/**
 * Where a tfjs-node package keeps its compiled addon, and whether it is there. npm installs the
 * package's JavaScript even when its install script could not build the addon (offline, or
 * `npm ci --ignore-scripts` before `npm run setup:native`); requiring such a package registers
 * ~150 kernels before it fails, so the backend checks for the addon first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The `binary` section node-pre-gyp reads from the package's package.json. */
interface PreGypBinary {
  readonly module_name: string;
  readonly module_path: string;
  readonly napi_versions?: readonly number[];
}

/**
 * The addon file node-pre-gyp's `find` returns for this Node: module_path with the highest
 * N-API version the package lists that this Node supports.
 */
export function nativeAddonPath(packageJsonFile: string, nodeNapiVersion = Number(process.versions.napi)): string {
  const manifest = JSON.parse(fs.readFileSync(packageJsonFile, 'utf8')) as { binary?: PreGypBinary };
  const binary = manifest.binary;
  if (binary === undefined) throw new Error(`${packageJsonFile} has no "binary" section`);
  const supported = (binary.napi_versions ?? []).filter((v) => v <= nodeNapiVersion);
  const napi = supported.length > 0 ? Math.max(...supported) : nodeNapiVersion;
  const modulePath = binary.module_path.replace('{napi_build_version}', String(napi));
  return path.join(path.dirname(packageJsonFile), modulePath, `${binary.module_name}.node`);
}

/** The error code of a package that is installed without its addon. */
export const NATIVE_ADDON_MISSING = 'LIFELONG_NATIVE_ADDON_MISSING';

/**
 * Throws (code NATIVE_ADDON_MISSING) when `pkg` is installed but its addon was never built.
 * An absent package passes: requiring it then reports that it is not installed.
 */
export function assertNativeAddonBuilt(pkg: string): void {
  let packageJsonFile: string;
  try {
    packageJsonFile = require.resolve(`${pkg}/package.json`);
  } catch {
    return;
  }
  const addon = nativeAddonPath(packageJsonFile);
  if (!fs.existsSync(addon)) {
    throw Object.assign(new Error(`${pkg} has no native addon at ${addon}`), { code: NATIVE_ADDON_MISSING });
  }
}

/** The error code of the GPU package on a machine without an NVIDIA driver. */
export const NO_GPU_DRIVER = 'LIFELONG_NO_GPU_DRIVER';

/** Files the NVIDIA kernel driver creates (also inside containers given a GPU). */
export const NVIDIA_DRIVER_FILES: readonly string[] = ['/proc/driver/nvidia/version', '/dev/nvidiactl'];

/** Whether an NVIDIA driver is present, and what says so (or why not). */
export function nvidiaDriver(exists: (file: string) => boolean = fs.existsSync): { readonly present: boolean; readonly why: string } {
  const found = NVIDIA_DRIVER_FILES.find((file) => exists(file));
  return found !== undefined
    ? { present: true, why: `${found} exists` }
    : { present: false, why: `no NVIDIA driver on this machine (${NVIDIA_DRIVER_FILES.join(' and ')} do not exist)` };
}

/**
 * Throws (code NO_GPU_DRIVER) when there is no NVIDIA driver: the GPU build of TensorFlow would
 * load ~1.2 GB of libraries only to find no device, and its 'tensorflow' backend would then stand
 * in for the CPU package's.
 */
export function assertGpuDriver(): void {
  const driver = nvidiaDriver();
  if (!driver.present) throw Object.assign(new Error(driver.why), { code: NO_GPU_DRIVER });
}
