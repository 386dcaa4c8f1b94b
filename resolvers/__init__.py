"""Query rules as plain functions over the request context: they return store data, schema/ wraps it."""
