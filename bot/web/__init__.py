"""The HTTP edge: blueprints, the endpoint contract, auth, security headers, OpenAPI, logs."""
