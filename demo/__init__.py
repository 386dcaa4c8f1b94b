"""Demo cases for `make run`: loaded through the event pipeline, never written to the store directly."""
