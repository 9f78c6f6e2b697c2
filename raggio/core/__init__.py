"""What runs inside every driver and worker: the core worker, object refs,
task and actor submission, serialization and the process-wide context."""
