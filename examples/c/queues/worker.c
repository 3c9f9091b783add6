/* A background worker in C (Tornado's `async def worker(): async for item in q`):
 * each job from queue `jobs` comes back on queue `results` as `JOB@c#N`,
 * N being this instance's index. The loop ends when the queue says stop
 * (a new version uploaded, or shutdown). */

#include "waterspout.h"

static int run(void) {
    const char *index = ws_setting("waterspout:worker-index", "0");
    for (;;) {
        const char *job;
        size_t len;
        int rc = ws_queue_get("jobs", WS_WAIT, &job, &len);
        if (rc == WS_QUEUE_STOPPING)
            return WS_OK;
        if (rc != WS_QUEUE_OK) {
            ws_log(WS_LOG_ERROR, "worker: get: %s", ws_queue_error_name(rc));
            return 500;
        }
        rc = ws_queue_put_text("results", ws_sprintf("%s@c#%s", job, index), WS_WAIT);
        ws_queue_task_done("jobs");
        ws_worker_item_done();
        if (rc == WS_QUEUE_STOPPING)
            return WS_OK;
    }
}

WS_WORKER(run);
