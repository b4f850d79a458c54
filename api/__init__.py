"""FastAPI application: routes, dependencies, error mapping and (later) the web pages."""
