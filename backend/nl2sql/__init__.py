"""Question to SQL: the ask pipeline, the guard, the executor, charts and the engines."""
