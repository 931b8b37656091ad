"""The queue: job functions, how they are dispatched (RQ or in-process), and the worker."""
