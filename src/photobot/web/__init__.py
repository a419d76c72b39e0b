"""HTTP plumbing shared by every route: auth, capped bodies, rate limits, middleware, health, media, OpenAPI."""
