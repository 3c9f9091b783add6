// Timers: `await sleep(seconds)` waits through the host; only this request
// waits. The wait counts against the handler's `timeout_ms`.
//
//     import { sleep } from "waterspout";
//     await sleep(0.5);

import { sleep as rawSleep } from "waterspout:handler/timers@0.1.0";

/** Waits `seconds`; returns a promise already resolved when the wait is over. */
export function sleep(seconds) {
  rawSleep(BigInt(Math.max(0, Math.round(seconds * 1000))));
  return Promise.resolve();
}
