/**
 * Device names and the ONNX Runtime execution providers each tries, apart
 * from the sessions: whoever validates a device (configuration, the CLI, the
 * detector's options) needs no ONNX Runtime loaded in its thread.
 */

import { DetectError } from '../errors.js';

/** Where graphs run. */
export type Device = 'cpu' | 'cuda';

/** Execution providers tried for each device, in order. */
export const EXECUTION_PROVIDERS: Readonly<Record<Device, readonly string[]>> = Object.freeze({
  cpu: Object.freeze(['cpu']),
  cuda: Object.freeze(['cuda', 'cpu']),
});

/** What a device that cannot be used does: run on the CPU with a warning, or refuse. */
export const DEVICE_FALLBACKS = ['cpu', 'error'] as const;
export type DeviceFallback = (typeof DEVICE_FALLBACKS)[number];

/** Validate a device name. @throws DetectError INVALID_DEVICE listing the valid values. */
export function parseDevice(value: string): Device {
  if (Object.hasOwn(EXECUTION_PROVIDERS, value)) return value as Device;
  throw new DetectError('INVALID_DEVICE', `device ${JSON.stringify(value)} is not supported; valid values: ${Object.keys(EXECUTION_PROVIDERS).join(', ')}`);
}
