"""A bare FastAPI app for the loopback benchmark: no routes, so every request gets
FastAPI's default 404 `{"detail": "Not Found"}` (scripts/bench-server.sh)."""

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
