// The `worker` world's export (`background-worker`) for an app's `Worker`
// class. The build bundles this as the component's entry:
//
//     import * as app from "APP.js";
//     export const backgroundWorker = serveWorkers(app);

import { pickClass, settingsObject, logException, isThenable } from "./index.js";
import { Worker, QueueStopping } from "./queues.js";

/** The `background-worker` export running the Worker class `app` exports. */
export function serveWorkers(app) {
  const failed = (error, where) => {
    if (error instanceof QueueStopping) return undefined;
    logException(where, error);
    throw `uncaught exception in ${where} (stack in the log)`;
  };
  return {
    run(settings) {
      const object = settingsObject(settings);
      let where = "Worker";
      try {
        const Class = pickClass(app, Worker, object);
        where = `${Class.name}.run`;
        const worker = new Class();
        worker.settings = object;
        worker.initialize(object);
        const result = worker.run();
        if (isThenable(result)) {
          return Promise.resolve(result).then(
            () => undefined,
            (error) => failed(error, where),
          );
        }
        return undefined;
      } catch (error) {
        return failed(error, where);
      }
    },
  };
}
