//! A background worker for the worker tests. It takes jobs from queue
//! `jobs`: `echo:X` puts `X@NAME#INDEX` on queue `results` (NAME is this
//! crate's name, so the two builds tell their versions apart), `trap`
//! panics (the host restarts the worker), `spin` loops without end (the
//! per-item time limit stops it), `slow:MS` busy-waits MS ms then echoes
//! `slow@NAME`. Every job is marked done.

include!("echo.rs");
